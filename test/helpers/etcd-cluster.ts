/**
 * A real etcd cluster for tests: members of Debian's `etcd` binary on 127.0.0.1 ports picked
 * here, each with its own temp data dir. Members are stopped (or SIGKILLed) by the PID this
 * helper started, and restarted on the same ports and data dir.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from './net.js';

export const ETCD_BIN = 'etcd';

/** Why etcd tests cannot run here, or undefined when the binary is there. */
export function etcdMissing(): string | undefined {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    return `the etcd binary is not installed (apt-get install -y etcd-server): ${r.error?.message ?? r.stderr}`;
  return undefined;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | null;
  output: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's client URL, comma-separated (for --etcd-endpoints). */
  endpoints: string;
  /** SIGKILL one member (by its PID) and wait for it to exit. */
  kill(i: number): Promise<void>;
  /** SIGTERM one member and wait for it to exit. */
  stop(i: number): Promise<void>;
  /** Start a stopped member again with its data dir. */
  restart(i: number): Promise<void>;
  /** Stop every member that runs and remove the data dirs. */
  destroy(): Promise<void>;
}

function launch(m: EtcdMember, initialCluster: string): void {
  m.output = '';
  const proc = spawn(
    ETCD_BIN,
    [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      m.clientUrl,
      '--advertise-client-urls',
      m.clientUrl,
      '--listen-peer-urls',
      m.peerUrl,
      '--initial-advertise-peer-urls',
      m.peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `trellis-test-${process.pid}`,
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (d: Buffer): void => {
    m.output = (m.output + d.toString()).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  m.proc = proc;
}

async function waitExit(proc: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(sig);
  await exited;
}

async function waitListening(m: EtcdMember, timeoutMs = 20_000): Promise<void> {
  const port = Number(new URL(m.clientUrl).port);
  const until = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (m.proc && m.proc.exitCode !== null)
      throw new Error(`etcd ${m.name} exited with ${m.proc.exitCode}:\n${m.output}`);
    if (Date.now() > until) throw new Error(`etcd ${m.name} did not listen:\n${m.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `size` members and waits until every one accepts client connections. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: mkdtempSync(join(tmpdir(), `trellis-test-etcd-m${i}-`)),
      proc: null,
      output: '',
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of members) launch(m, initialCluster);
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl).join(','),
    async kill(i) {
      const p = members[i]!.proc;
      if (p) await waitExit(p, 'SIGKILL');
    },
    async stop(i) {
      const p = members[i]!.proc;
      if (p) await waitExit(p, 'SIGTERM');
    },
    async restart(i) {
      launch(members[i]!, initialCluster);
      await waitListening(members[i]!);
    },
    async destroy() {
      for (const m of members) if (m.proc) await waitExit(m.proc, 'SIGKILL');
      for (const m of members) rmSync(m.dataDir, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) await waitListening(m);
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}

/**
 * A CA encryption key file (32 random bytes, base64, mode 0600) in `dir`, as an operator makes
 * with `openssl rand -base64 32`: the value of --ca-encryption-key-file for servers on etcd.
 */
export function writeCaEncryptionKey(dir: string, name = 'ca-encryption.key'): string {
  const path = join(dir, name);
  writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return path;
}

/**
 * For a suite's `before`: a started cluster, or the suite skipped with the reason printed when
 * etcd is not installed here (CI installs it, so there it never skips).
 */
export async function etcdClusterOrSkip(ctx: Mocha.Context, size = 3): Promise<EtcdCluster> {
  const missing = etcdMissing();
  if (missing) {
    console.log(`      skipped: ${missing}`);
    ctx.skip();
  }
  return startEtcdCluster(size);
}
