/**
 * Benchmark sizes come from environment variables (BENCH_*), each with a default. Values are
 * validated here so a typo fails at once instead of running a meaningless benchmark.
 */

function raw(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`${name}: "${text}" is not a positive integer`);
  }
  return n;
}

/** A positive integer from `name`, or `def` when unset. */
export function envInt(name: string, def: number): number {
  const v = raw(name);
  return v === undefined ? def : positiveInt(name, v);
}

/** A comma-separated list of positive integers from `name`, or `def` when unset. */
export function envIntList(name: string, def: readonly number[]): number[] {
  const v = raw(name);
  if (v === undefined) return [...def];
  return v.split(',').map((part) => positiveInt(name, part.trim()));
}
