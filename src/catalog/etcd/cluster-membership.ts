/**
 * This server's membership in an etcd-backed cluster: one lease (TTL `leaseTtlSec`, default 5 s)
 * under which it is a leader candidate, listed among the live servers, and reports the nodes it
 * heard from. Loaded lazily by the server (etcd3 is only needed with --store etcd).
 */
import type { Clock } from '../../core/index.js';
import type { Leadership, ServerInfo } from '../leadership.js';
import type { HeardElsewhere } from '../liveness.js';
import { connectEtcd, type EtcdConnectionOptions } from './etcd-client.js';
import { etcdCause } from './etcd-errors.js';
import { EtcdLeadership } from './etcd-leadership.js';
import { HeardNodes } from './heard-nodes.js';
import { ServerLease } from './server-lease.js';
import { storageError } from '../../core/index.js';

export const DEFAULT_LEADER_LEASE_TTL_SEC = 5;

export interface ClusterMembershipOptions {
  connection: EtcdConnectionOptions;
  self: ServerInfo;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** This server's heard nodes (node -> deadline), published for the leader. */
  heardHere: () => ReadonlyMap<string, number>;
  leaseTtlSec?: number;
}

export interface ClusterMembership {
  leadership: Leadership;
  heardElsewhere: HeardElsewhere;
  close(): Promise<void>;
}

export async function joinEtcdCluster(opts: ClusterMembershipOptions): Promise<ClusterMembership> {
  const client = connectEtcd(opts.connection);
  const prefix = opts.connection.prefix;
  const lease = new ServerLease(client, {
    ttlSec: opts.leaseTtlSec ?? DEFAULT_LEADER_LEASE_TTL_SEC,
    clock: opts.clock,
    log: opts.log,
  });
  const leadership = new EtcdLeadership(client, lease, {
    prefix,
    self: opts.self,
    clock: opts.clock,
    log: opts.log,
  });
  const heard = new HeardNodes(client, lease, {
    prefix,
    selfId: opts.self.id,
    clock: opts.clock,
    log: opts.log,
    heardHere: opts.heardHere,
  });
  const close = async (): Promise<void> => {
    await heard.close();
    await leadership.close();
    await lease.close();
    client.close();
  };
  try {
    await lease.start();
    await leadership.start();
    await heard.start();
  } catch (err) {
    await close().catch(() => undefined);
    throw storageError(`could not join the servers in etcd: ${etcdCause(err)}`, err);
  }
  return { leadership, heardElsewhere: heard, close };
}
