/**
 * Starting the lab's daemons inside a namespace (as a given user, detached, output to a log
 * file) and stopping them again, always by PID: only processes that live in a lab namespace
 * or that the lab recorded (with the same command line) are ever signalled.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Clock } from '../core/index.js';
import { namespacePids } from './network.js';
import { LabError, sleep } from './sys.js';

export interface RunAs {
  user: string;
  /** Capabilities kept across the uid change (ambient), e.g. ["net_admin"]. */
  caps?: readonly string[];
}

/** `setpriv` arguments that switch to `as.user` (its group and supplementary groups). */
export function setprivArgs(as: RunAs): string[] {
  const args = ['setpriv', '--reuid', as.user, '--regid', as.user, '--init-groups'];
  if (as.caps?.length) {
    const list = as.caps.map((c) => `+${c}`).join(',');
    args.push('--inh-caps', list, '--ambient-caps', list);
  }
  return [...args, '--'];
}

/** The full command: `ip netns exec NS [setpriv ...] argv...` (each step execs the next). */
export function inNamespace(ns: string, argv: readonly string[], as?: RunAs): string[] {
  return ['ip', 'netns', 'exec', ns, ...(as ? setprivArgs(as) : []), ...argv];
}

/** Starts a daemon in its own session, output appended to `log`; resolves to its PID. */
export async function spawnDetached(
  ns: string,
  argv: readonly string[],
  as: RunAs | undefined,
  log: string,
): Promise<number> {
  const [cmd, ...args] = inNamespace(ns, argv, as);
  const fd = openSync(log, 'a', 0o644);
  try {
    const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', fd, fd] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(new LabError(`cannot start ${argv.join(' ')}: ${err.message}`)),
      );
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The process's command line, or undefined when it is gone. */
export function commandLine(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * SIGTERM, then SIGKILL after `graceMs` for what is left; resolves once all are gone (or
 * after a last short wait). Returns the PIDs still alive, which should be none.
 */
export async function stopPids(
  pids: readonly number[],
  clock: Clock,
  graceMs = 5000,
): Promise<number[]> {
  const waitGone = async (ms: number): Promise<number[]> => {
    const until = clock.now() + ms;
    for (;;) {
      const left = pids.filter(isAlive);
      if (left.length === 0 || clock.now() >= until) return left;
      await sleep(clock, 100);
    }
  };
  for (const pid of pids) signal(pid, 'SIGTERM');
  const stubborn = await waitGone(graceMs);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  return waitGone(2000);
}

/** Stops every process in a namespace; a few rounds, since a dying process may fork. */
export async function emptyNamespace(ns: string, clock: Clock, graceMs = 5000): Promise<number> {
  let stopped = 0;
  for (let round = 0; round < 3; round++) {
    const pids = await namespacePids(ns);
    if (pids.length === 0) break;
    stopped += pids.length;
    await stopPids(pids, clock, graceMs);
  }
  return stopped;
}
