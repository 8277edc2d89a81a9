/**
 * Starts real `trellis` processes for end-to-end tests and stops exactly the ones it started
 * (by PID). Each process is asked to bind port 0 and reports the address it got on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';

export const TRELLIS_BIN = resolve('dist/src/bin/trellis.js');

export interface TrellisProcess {
  proc: ChildProcess;
  address: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

const READY_RE = /(?:listening on |ready on http:\/\/)(\S+)/;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `trellis-test-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function startTrellis(
  args: string[],
  opts: { timeoutMs?: number; netns?: string; env?: Record<string, string> } = {},
): Promise<TrellisProcess> {
  // Agents answer DNS on 127.0.0.1:8600 by default; tests run several at once: any free port.
  const dns =
    args[0] === 'agent' && !args.includes('--dns-bind') ? ['--dns-bind', '127.0.0.1:0'] : [];
  // A stopped agent drains first (SIGTERM); tests that are not about draining skip its grace.
  const grace =
    args[0] === 'agent' && !args.includes('--drain-grace') ? ['--drain-grace', '0s'] : [];
  const argv = [TRELLIS_BIN, ...args, ...dns, ...grace, '--log-level', 'warn'];
  // `ip netns exec` execs the command: the PID is the trellis process itself.
  const env = opts.env ? { ...process.env, ...opts.env } : process.env;
  const proc = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const address = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started process behind
      rej(
        new Error(`trellis ${args[0]} did not start within ${opts.timeoutMs ?? 15000}ms:\n${out}`),
      );
    }, opts.timeoutMs ?? 15_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = READY_RE.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`trellis ${args[0]} exited with ${code} before it was ready:\n${out}`));
    });
  });
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await exited;
  };
  return {
    proc,
    address,
    output: () => out,
    stop: () => signal('SIGTERM'),
    kill9: () => signal('SIGKILL'),
    exited,
  };
}

/** The process ids of `pid`'s children (a data plane's or an agent's proxy workers). */
export function childPids(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text ? text.split(/\s+/).map(Number) : [];
}

/** Polls `fn` until it returns a truthy value or the time runs out. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(`condition not met within ${timeoutMs}ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** GET a URL and decode its JSON body. */
export async function getJSON<T>(url: string): Promise<T> {
  const r = await request(url);
  return (await r.body.json()) as T;
}

/** Temp dirs made by a test file, all removed by `removeAll()`. */
export function tempDirs(): { make(name: string): string; removeAll(): void } {
  const made: string[] = [];
  return {
    make(name) {
      const d = tempDir(name);
      made.push(d);
      return d;
    },
    removeAll() {
      for (const d of made.splice(0)) removeDir(d);
    },
  };
}

/**
 * A `trellis server` on 127.0.0.1 port 0 with its data in `dir`. ACLs default to allow so tests
 * of other features need no tokens; ACL tests pass `--acl-default-policy deny`.
 */
export function startServerProcess(
  dir: string,
  node: string,
  extra: string[] = [],
  opts: { timeoutMs?: number } = {},
): Promise<TrellisProcess> {
  const acl = extra.includes('--acl-default-policy') ? [] : ['--acl-default-policy', 'allow'];
  return startTrellis(
    ['server', '--data-dir', dir, '--bind', '127.0.0.1:0', '--node', node, ...acl, ...extra],
    opts,
  );
}

/**
 * The arguments of a test agent on loopback: joined to `server`, its own node name, data dir
 * and config dir, its API on a free port, and a quick sync so catalog changes show up fast.
 */
export function agentArgs(
  server: string,
  node: string,
  dataDir: string,
  configDir: string,
): string[] {
  return [
    'agent',
    '--server',
    server,
    '--node',
    node,
    '--data-dir',
    dataDir,
    '--config-dir',
    configDir,
    '--bind',
    '127.0.0.1:0',
    '--sync-interval',
    '1000',
    // DNS defaults to 127.0.0.1:8600; several agents share this host.
    '--dns-bind',
    '127.0.0.1:0',
  ];
}
