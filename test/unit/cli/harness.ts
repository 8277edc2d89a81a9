/**
 * Runs the CLI in-process with captured output, as bin/trellis would with real streams.
 */
import { runCli, type CliDeps } from '../../../src/cli/index.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Standard input, delivered in two chunks to exercise joining. */
  stdin?: string | Buffer;
  signal?: AbortSignal;
  deps?: Partial<CliDeps>;
  /** Called with the output so far after every stdout write. */
  onStdout?: (soFar: string) => void;
}

export async function trellis(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    argv,
    {
      stdout: (s) => {
        stdout += s;
        opts.onStdout?.(stdout);
      },
      stderr: (s) => {
        stderr += s;
      },
      env: opts.env ?? {},
      stdin: opts.stdin === undefined ? undefined : chunks(Buffer.from(opts.stdin)),
      signal: opts.signal,
    },
    { deps: opts.deps },
  );
  return { code, stdout, stderr };
}

async function* chunks(data: Buffer): AsyncGenerator<Buffer> {
  const half = Math.floor(data.length / 2);
  yield data.subarray(0, half);
  yield data.subarray(half);
}
