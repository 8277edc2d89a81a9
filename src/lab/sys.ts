/**
 * Running system commands (ip, useradd, ...) without a shell, with errors that name the command
 * and quote its stderr, so a failed step reads as one clear line.
 */
import { execFile } from 'node:child_process';
import type { Clock } from '../core/index.js';

/** A lab failure the CLI prints as one line (exit 1). */
export class LabError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'LabError';
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs `cmd args`; rejects with a LabError carrying the first lines of stderr. */
export function run(cmd: string, args: readonly string[], timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT')
          return reject(new LabError(`${cmd} not found: the lab needs it on PATH`));
        const detail = stderr.trim().split('\n').slice(0, 3).join('; ') || err.message;
        reject(new LabError(`${cmd} ${args.join(' ')} failed: ${detail}`, { cause: err }));
      },
    );
  });
}

/** Like run, but a failure is an answer (false), not an error. */
export async function succeeds(cmd: string, args: readonly string[]): Promise<boolean> {
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** The tools the lab cannot work without; the error names the first one missing. */
export async function requireTools(tools: readonly string[]): Promise<void> {
  for (const tool of tools) {
    const found = await succeeds('sh', ['-c', `command -v "$0" >/dev/null`, tool]);
    if (!found) throw new LabError(`${tool} not found: the lab needs it on PATH`);
  }
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0)
    throw new LabError(
      'trellis lab needs root (it creates network namespaces and users): run it with sudo',
    );
}
