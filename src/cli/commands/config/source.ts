/**
 * Reads the text of a file argument for the commands that send parsed files (config write,
 * intention create --file, acl policy create --rules-file): a path, or "-" for stdin.
 */
import type { CommandEnv } from '../../context.js';
import { UsageError } from '../../exit.js';
import { readAll } from '../../input.js';

export interface SourceText {
  text: string;
  /** What diagnostics call it: the path, or "<stdin>". */
  name: string;
}

/**
 * `value` is the flag or positional as yargs gave it; yargs turns a bare "-" into "", so the
 * command line tells the two apart.
 */
export async function readSource(value: string, env: CommandEnv): Promise<SourceText> {
  if (value === '-' || (value === '' && env.argv.includes('-'))) {
    if (!env.io.stdin) throw new UsageError('Cannot read from stdin: no input stream');
    return { text: (await readAll(env.io.stdin)).toString('utf8'), name: '<stdin>' };
  }
  if (value === '') throw new UsageError('The file name is empty');
  try {
    return { text: (await env.deps.readFile(value)).toString('utf8'), name: value };
  } catch (err) {
    throw new UsageError(`Cannot read "${value}": ${(err as Error).message}`);
  }
}
