/**
 * The layouts of the HA benchmark: a real etcd cluster (test/helpers/etcd-cluster, fresh data
 * dirs) and `trellis server --store etcd` processes over it. Each server gets a fixed loopback
 * port picked here, so that a SIGKILLed server can be started again at the address its agent
 * and clients already know, with its own data dir. Processes are stopped by the PID this file
 * started them with.
 */
import { processCpuMs } from '../lib/proc.js';
import { trackChild, trackDir } from './leftovers.js';
import {
  etcdMissing,
  startEtcdCluster,
  writeCaEncryptionKey,
  type EtcdCluster,
} from '../../test/helpers/etcd-cluster.js';
import { freePort } from '../../test/helpers/net.js';
import { startTrellis, tempDirs, type TrellisProcess } from '../../test/helpers/trellis-process.js';

const SERVER_START_MS = 30_000;

export interface HaServer {
  name: string;
  /** 127.0.0.1:PORT, the same across restarts. */
  address: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  running(): boolean;
  /** The live process's PID (throws when it is not running). */
  pid(): number;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** Start again on the same port with the same data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface EtcdLayout {
  etcd: EtcdCluster;
  servers: HaServer[];
  /** CPU (user + system) of the running Trellis servers so far, ms. */
  serversCpuMs(): number;
  /** CPU of the running etcd members so far, ms. */
  etcdCpuMs(): number;
  /** Stops every server and member, removes every data dir. */
  stop(): Promise<void>;
}

/** CPU of a process so far, or 0 when it is gone (a killed server between rounds). */
function cpuOrZero(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return processCpuMs(pid);
  } catch {
    return 0;
  }
}

/** `count` Trellis servers over a fresh three-member etcd cluster. */
export async function startEtcdLayout(count: number, tag: string): Promise<EtcdLayout> {
  const missing = etcdMissing();
  if (missing) throw new Error(`the ha benchmark needs etcd: ${missing}`);
  const dirs = tempDirs();
  const etcd = await startEtcdCluster(3);
  for (const m of etcd.members) {
    if (m.proc) trackChild(m.proc);
    trackDir(m.dataDir);
  }
  const servers: HaServer[] = [];
  const layout: EtcdLayout = {
    etcd,
    servers,
    serversCpuMs: () => servers.reduce((sum, s) => sum + (s.running() ? cpuOrZero(s.pid()) : 0), 0),
    etcdCpuMs: () => etcd.members.reduce((sum, m) => sum + cpuOrZero(m.proc?.pid), 0),
    async stop() {
      for (const s of servers) await s.stop();
      await etcd.destroy();
      dirs.removeAll();
    },
  };
  try {
    // CA keys live in etcd, encrypted with a key file every server is given (docs/ha.md).
    const keyFile = writeCaEncryptionKey(trackDir(dirs.make(`ha-${tag}-key`)));
    for (let i = 0; i < count; i++) {
      const name = `ha-${tag}-${String.fromCharCode(97 + i)}`;
      const dataDir = trackDir(dirs.make(name));
      servers.push(await startEtcdServer(name, dataDir, etcd.endpoints, keyFile));
    }
  } catch (err) {
    await layout.stop();
    throw err;
  }
  return layout;
}

async function startEtcdServer(
  name: string,
  dataDir: string,
  endpoints: string,
  keyFile: string,
): Promise<HaServer> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = [
    'server',
    '--data-dir',
    dataDir,
    '--bind',
    address,
    '--node',
    name,
    '--acl-default-policy',
    'allow',
    '--http-max-conns-per-client',
    '0',
    '--https-bind',
    'off',
    '--store',
    'etcd',
    '--etcd-endpoints',
    endpoints,
    '--ca-encryption-key-file',
    keyFile,
  ];
  const start = async (): Promise<TrellisProcess> => {
    const p = await startTrellis(args, { timeoutMs: SERVER_START_MS });
    trackChild(p.proc);
    return p;
  };
  let proc: TrellisProcess | undefined = await start();
  const running = (): boolean =>
    proc !== undefined && proc.proc.exitCode === null && proc.proc.signalCode === null;
  return {
    name,
    address,
    origin: `http://${address}`,
    running,
    pid() {
      if (!running() || proc?.proc.pid === undefined) throw new Error(`${name} is not running`);
      return proc.proc.pid;
    },
    async kill() {
      await proc?.kill9();
      proc = undefined;
    },
    async restart() {
      if (running()) throw new Error(`${name} is still running`);
      proc = await start();
    },
    async stop() {
      await proc?.stop();
      proc = undefined;
    },
  };
}
