/**
 * Child processes of the data-plane benchmark (app, proxies, HAProxy, load generator, agent):
 * each is started here, its output kept (capped) and split into lines, and it is stopped by
 * its own PID (SIGTERM, then SIGKILL if it lingers). A group stops everything it started; a
 * last-resort `exit` hook kills whatever is still running and removes the temp directories,
 * so an interrupted run leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuMs, processMemory } from '../lib/proc.js';
import { now, sleep } from '../lib/time.js';

const OUTPUT_LIMIT = 64 * 1024;
const STOP_TIMEOUT_MS = 10_000;

/** Every child still running and every temp dir not yet removed, for the exit hook. */
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const c of liveChildren)
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) c.kill('SIGKILL');
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
});

export interface Child {
  name: string;
  pid: number;
  /** Output so far (stdout and stderr, capped), for error messages. */
  output(): string;
  /** Resolves with the rest of the first line (from now or earlier) that starts with prefix. */
  waitLine(prefix: string, timeoutMs: number): Promise<string>;
  /** CPU time (user + system) used so far, ms. */
  cpuMs(): number;
  /** VmRSS now, bytes. */
  rss(): number;
  signal(sig: NodeJS.Signals): void;
  running(): boolean;
  /** Resolves with the exit code (null after a signal) once it exits; rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<number | null>;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
}

/** Children started by one benchmark run; `stopAll` ends them (by PID) in reverse order. */
export class ProcessGroup {
  readonly #children: Child[] = [];
  readonly #dirs: string[] = [];

  /** A fresh temp directory, removed by stopAll(). */
  tempDir(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), `trellis-bench-${prefix}-`));
    this.#dirs.push(d);
    liveDirs.add(d);
    return d;
  }

  spawn(opts: SpawnOptions): Child {
    const proc = spawn(opts.command, opts.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    if (proc.pid === undefined) throw new Error(`${opts.name}: could not start ${opts.command}`);
    liveChildren.add(proc);
    const pid = proc.pid;
    let exitNote = '';
    let exitCode: number | null = null;
    const exited = new Promise<void>((resolve) =>
      proc.once('exit', (code, sig) => {
        exitNote = `exited (${code ?? sig})`;
        exitCode = code;
        liveChildren.delete(proc);
        resolve();
      }),
    );
    // A failed spawn (ENOENT) emits 'error' and 'exit'; the waiters below report it.
    proc.once('error', (err) => (exitNote = `failed: ${err.message}`));
    let out = '';
    const lines: string[] = [];
    const waiters = new Set<() => void>();
    let pending = '';
    const onText = (text: string, isStdout: boolean): void => {
      if (out.length < OUTPUT_LIMIT) out += text;
      if (!isStdout) return;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        lines.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      for (const w of [...waiters]) w();
    };
    proc.stdout!.on('data', (d: Buffer) => onText(d.toString(), true));
    proc.stderr!.on('data', (d: Buffer) => onText(d.toString(), false));

    const running = (): boolean => proc.exitCode === null && proc.signalCode === null;
    const child: Child = {
      name: opts.name,
      pid,
      output: () => out,
      waitLine(prefix, timeoutMs) {
        let seen = 0;
        return new Promise<string>((resolve, reject) => {
          const finish = (fn: () => void): void => {
            clearTimeout(timer);
            waiters.delete(check);
            fn();
          };
          const check = (): void => {
            for (; seen < lines.length; seen++) {
              const line = lines[seen]!;
              if (line.startsWith(prefix)) {
                seen++;
                return finish(() => resolve(line.slice(prefix.length).trim()));
              }
            }
            if (!running())
              finish(() =>
                reject(
                  new Error(`${opts.name} ${exitNote || 'exited'} before "${prefix}":\n${out}`),
                ),
              );
          };
          const timer = setTimeout(
            () =>
              finish(() =>
                reject(new Error(`${opts.name}: no "${prefix}" within ${timeoutMs} ms:\n${out}`)),
              ),
            timeoutMs,
          );
          waiters.add(check);
          void exited.then(() => setImmediate(check));
          check();
        });
      },
      cpuMs: () => processCpuMs(pid),
      rss: () => processMemory(pid).rss,
      signal(sig) {
        if (running()) proc.kill(sig);
      },
      running,
      async exited(timeoutMs) {
        let timer: NodeJS.Timeout | undefined;
        const late = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
        ]);
        clearTimeout(timer);
        if (late) throw new Error(`${opts.name}: still running after ${timeoutMs} ms`);
        return exitCode;
      },
      async stop() {
        if (running()) {
          proc.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const late = await Promise.race([
            exited.then(() => false),
            new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_TIMEOUT_MS))),
          ]);
          clearTimeout(timer);
          if (late) proc.kill('SIGKILL');
        }
        await exited;
      },
    };
    this.#children.push(child);
    return child;
  }

  /** Starts `node <script> <args...>` (a compiled benchmark helper). */
  node(name: string, script: string, args: string[], nodeArgs: string[] = []): Child {
    return this.spawn({ name, command: process.execPath, args: [...nodeArgs, script, ...args] });
  }

  /** Stops one child now (and forgets it). */
  async stop(child: Child): Promise<void> {
    const i = this.#children.indexOf(child);
    if (i >= 0) this.#children.splice(i, 1);
    await child.stop();
  }

  /** Stops every child still running (newest first) and removes the temp directories. */
  async stopAll(): Promise<void> {
    while (this.#children.length) await this.#children.pop()!.stop();
    for (const d of this.#dirs.splice(0)) {
      rmSync(d, { recursive: true, force: true });
      liveDirs.delete(d);
    }
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Waits until every port accepts connections; throws (naming the missing ones) on timeout. */
export async function waitPorts(
  ports: readonly number[],
  timeoutMs: number,
  what: string,
  alive: () => boolean = () => true,
): Promise<void> {
  const until = now() + timeoutMs;
  let missing = [...ports];
  for (;;) {
    const open = await Promise.all(missing.map((p) => portOpen(p)));
    missing = missing.filter((_, i) => !open[i]);
    if (missing.length === 0) return;
    if (!alive()) throw new Error(`${what}: the process exited`);
    if (now() > until)
      throw new Error(
        `${what}: ${missing.length} port(s) not listening after ${timeoutMs} ms (${missing.slice(0, 5).join(', ')}...)`,
      );
    await sleep(100);
  }
}
