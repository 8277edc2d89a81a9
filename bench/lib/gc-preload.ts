/**
 * Loaded into the benchmarked server with `node --expose-gc --import <this file>` (only when a
 * benchmark asks for it): on SIGUSR2 it runs a full garbage collection and prints the memory
 * usage after it on one stdout line, so a benchmark can read the server's settled size.
 * Nothing in the server changes; it only gains this signal handler.
 */
export const GC_DONE_MARK = 'trellis-bench-gc';

const gc = (globalThis as { gc?: () => void }).gc;

process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  const usage = { ...process.memoryUsage(), collected: gc !== undefined };
  process.stdout.write(`${GC_DONE_MARK} ${JSON.stringify(usage)}\n`);
});
