/**
 * The etcd side of a lab with `--servers 3`: each server host runs one etcd member on its lab
 * address, and every Trellis server uses all three members. Pure command lines plus the
 * shared CA encryption key file; `up` starts the processes.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, writeFileSync } from 'node:fs';
import { LabError, succeeds } from './sys.js';
import { ETCD_CLIENT_PORT, serverHosts, type LabHost, type Topology } from './topology.js';
import type { UnixIds } from './users.js';

export const DEFAULT_ETCD = 'etcd';
/** The name of the shared key file in the lab's state dir. */
export const CA_KEY_FILE = 'ca-encryption.key';
/** Where each member also answers inside its own host, for `lab exec serverN -- etcdctl`. */
export const ETCD_LOCAL_URL = `http://127.0.0.1:${ETCD_CLIENT_PORT}`;

/** A clear error when the etcd binary is missing, before anything is made. */
export async function requireEtcd(etcd: string): Promise<void> {
  if (!(await succeeds(etcd, ['--version'])))
    throw new LabError(
      `--servers 3 runs etcd, and \`${etcd} --version\` does not run: install Debian's etcd-server (apt-get install etcd-server)`,
    );
}

/** The members' client URLs, for `trellis server --etcd-endpoints`. */
export function etcdEndpoints(topo: Topology): string {
  return serverHosts(topo)
    .map((h) => h.etcd?.clientUrl)
    .filter((u): u is string => u !== undefined)
    .join(',');
}

/** The command line of `host`'s etcd member, a member of a new cluster of every server host. */
export function etcdArgv(etcd: string, topo: Topology, host: LabHost, dataDir: string): string[] {
  const member = host.etcd;
  if (!member) throw new LabError(`host ${host.name} runs no etcd member`);
  const initialCluster = serverHosts(topo)
    .flatMap((h) => (h.etcd ? [`${h.etcd.name}=${h.etcd.peerUrl}`] : []))
    .join(',');
  return [
    etcd,
    ...['--name', member.name, '--data-dir', dataDir],
    ...['--listen-client-urls', `${member.clientUrl},${ETCD_LOCAL_URL}`],
    ...['--advertise-client-urls', member.clientUrl],
    ...['--listen-peer-urls', member.peerUrl, '--initial-advertise-peer-urls', member.peerUrl],
    ...['--initial-cluster', initialCluster, '--initial-cluster-state', 'new'],
    // A token of the lab's own: members of another lab's cluster never join this one.
    ...['--initial-cluster-token', `trellis-lab-${topo.name}`],
    // Trellis deletes its log keys but does not compact etcd's history (docs/ha.md).
    ...['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1h'],
    ...['--logger', 'zap', '--log-level', 'warn'],
  ];
}

/** 32 random bytes in base64, readable by the servers' user only (`openssl rand -base64 32`). */
export function writeCaEncryptionKey(path: string, owner: UnixIds): void {
  writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  chownSync(path, owner.uid, owner.gid);
}
