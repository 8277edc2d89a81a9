/**
 * Starts a real `trellis server` process on 127.0.0.1 (port 0) with data in a fresh temp
 * directory, and stops exactly that process (by its PID) and removes the directory afterwards.
 * Every started server is remembered until stopped, so the runner can clean up after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GC_DONE_MARK } from './gc-preload.js';
import { GC_PRELOAD_URL, TRELLIS_BIN } from './paths.js';
import { processCpuMs, processMemory, type ProcessMemory } from './proc.js';

const READY_RE = /trellis server listening on (\S+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
const OUTPUT_LIMIT = 64 * 1024;

export interface HeapAfterGc {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** False when the server was started without the GC hook's --expose-gc. */
  collected: boolean;
}

export interface BenchServer {
  pid: number;
  /** http://127.0.0.1:PORT */
  origin: string;
  dataDir: string;
  memory(): ProcessMemory;
  /** CPU time (user + system) the server has used so far, ms. */
  cpuMs(): number;
  /** Full GC in the server (needs `gcHook`), then its memory usage as the server sees it. */
  collectGarbage(): Promise<HeapAfterGc>;
  /** What the server printed (capped), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Short name used in the temp directory and the node name. */
  name: string;
  /** Load bench/lib/gc-preload into the server so collectGarbage() works. */
  gcHook?: boolean;
  /** More `trellis server` flags (e.g. --acl-default-policy allow). */
  args?: string[];
}

const live = new Set<BenchServer>();
/** Last resort if this process dies without stopping them: kill our servers, drop their dirs. */
const emergency = new Map<BenchServer, () => void>();
process.on('exit', () => {
  for (const kill of emergency.values()) kill();
});

export async function startServer(opts: StartOptions): Promise<BenchServer> {
  if (!existsSync(TRELLIS_BIN))
    throw new Error(`${TRELLIS_BIN} is missing: run the build first (npm run build)`);
  const dataDir = mkdtempSync(join(tmpdir(), `trellis-bench-${opts.name}-`));
  const nodeArgs = opts.gcHook ? ['--expose-gc', '--import', GC_PRELOAD_URL] : [];
  const args = [
    ...nodeArgs,
    TRELLIS_BIN,
    'server',
    '--data-dir',
    dataDir,
    '--bind',
    '127.0.0.1:0',
    '--node',
    'bench-server',
    '--log-level',
    'warn',
    // The benchmarks' thousands of watchers all come from 127.0.0.1: no per-client cap.
    '--http-max-conns-per-client',
    '0',
    // Benchmarks of other features run without tokens, as dev mode does.
    ...((opts.args ?? []).includes('--acl-default-policy')
      ? []
      : ['--acl-default-policy', 'allow']),
    ...(opts.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let out = '';
  const gcWaiters: ((line: string) => void)[] = [];
  let pendingLine = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    if (out.length < OUTPUT_LIMIT) out += text;
    pendingLine += text;
    let nl: number;
    while ((nl = pendingLine.indexOf('\n')) >= 0) {
      const line = pendingLine.slice(0, nl);
      pendingLine = pendingLine.slice(nl + 1);
      if (line.startsWith(GC_DONE_MARK))
        gcWaiters.shift()?.(line.slice(GC_DONE_MARK.length).trim());
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    if (out.length < OUTPUT_LIMIT) out += d.toString();
  });

  let origin: string;
  try {
    origin = await waitReady(proc, exited, () => out);
  } catch (err) {
    await kill(proc, exited);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const server: BenchServer = {
    pid: proc.pid!,
    origin,
    dataDir,
    memory: () => processMemory(proc.pid!),
    cpuMs: () => processCpuMs(proc.pid!),
    collectGarbage() {
      if (!opts.gcHook)
        return Promise.reject(new Error('collectGarbage() needs startServer({ gcHook: true })'));
      return new Promise<HeapAfterGc>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('the server did not report after SIGUSR2')),
          30_000,
        );
        gcWaiters.push((json) => {
          clearTimeout(timer);
          resolve(JSON.parse(json) as HeapAfterGc);
        });
        proc.kill('SIGUSR2');
      });
    },
    output: () => out,
    async stop() {
      live.delete(server);
      emergency.delete(server);
      await kill(proc, exited);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  live.add(server);
  emergency.set(server, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  return server;
}

/** Stops every server still running (used by the runner on failure or interrupt). */
export async function stopAllServers(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.stop()));
}

function waitReady(
  proc: ChildProcess,
  exited: Promise<void>,
  output: () => string,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`trellis server did not start within ${START_TIMEOUT_MS} ms:\n${output()}`));
    }, START_TIMEOUT_MS);
    const onData = (): void => {
      const m = READY_RE.exec(output());
      if (!m) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      resolve(`http://${m[1]!}`);
    };
    proc.stdout!.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(
        new Error(
          `trellis server exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output()}`,
        ),
      );
    });
  });
}

/** SIGTERM to our own child, SIGKILL if it does not exit in time; waits for the exit. */
async function kill(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
  });
  const late = await Promise.race([exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    proc.kill('SIGKILL');
    await exited;
  }
}
