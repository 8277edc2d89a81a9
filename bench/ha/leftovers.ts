/**
 * Last resort when the benchmark process exits without stopping what the HA benchmark started
 * (an interrupted run, a crash): every tracked child still running is SIGKILLed by its own
 * handle (its PID) and every tracked temp dir removed, in the process's `exit` hook.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function trackChild(c: ChildProcess): void {
  if (c.exitCode !== null || c.signalCode !== null) return;
  children.add(c);
  c.once('exit', () => children.delete(c));
}

export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}
