/**
 * Where command values come from: the argument itself, "@file", or standard input ("-").
 */
import { UsageError } from './exit.js';
import type { CliDeps, CliIo } from './context.js';

/** Reads all of an input stream. */
export async function readAll(stream: AsyncIterable<string | Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Resolves a value argument: undefined or "-" reads stdin, "@path" reads a file, anything
 * else is the value itself.
 */
export async function readValue(
  value: string | undefined,
  io: CliIo,
  readFile: CliDeps['readFile'],
): Promise<string | Buffer> {
  if (value === undefined || value === '-') {
    if (!io.stdin) throw new UsageError('Cannot read the value from stdin: no input stream');
    return readAll(io.stdin);
  }
  if (value.startsWith('@')) {
    const path = value.slice(1);
    if (path === '') throw new UsageError('Missing file name after "@"');
    try {
      return await readFile(path);
    } catch (err) {
      throw new UsageError(`Cannot read "${path}": ${(err as Error).message}`);
    }
  }
  return value;
}
