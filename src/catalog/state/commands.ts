/**
 * The write commands of the catalog's state machine. A command is everything a write needs to be
 * applied deterministically: ids, timestamps and defaults are filled in before it is logged, so
 * replaying the write-ahead log after a crash rebuilds exactly the same state.
 */
import type { AclCommand } from './acl-commands.js';
import type { CaCommand } from './ca-table.js';
import type { ConfigCommand } from './config-commands.js';
import type { CoordinateSetCommand } from './coordinate-table.js';
import type { EventFireCommand } from './event-table.js';
import type { QueryCommand } from './query-table.js';
import type { AgentService, CheckDefinition, HealthStatus, Session } from '../../api/index.js';

export interface NodeSpec {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
}

export interface CheckSpec {
  CheckID: string;
  Name: string;
  Status: HealthStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  Type: string;
  Interval: string;
  Timeout: string;
  Definition: CheckDefinition;
}

export type ServiceSpec = Omit<AgentService, 'CreateIndex' | 'ModifyIndex' | 'Datacenter'>;

export interface RegisterCommand {
  type: 'register';
  node: NodeSpec;
  skipNodeUpdate: boolean;
  service?: ServiceSpec;
  checks: CheckSpec[];
  /** Wall-clock time of the write (ms): starts lock-delay if a session ends because of it. */
  at?: number;
}

export interface DeregisterCommand {
  type: 'deregister';
  node: string;
  serviceID?: string;
  checkID?: string;
  at?: number;
}

/** Changes only a check's status and output (heartbeats, TTL updates, agent check results). */
export interface CheckStatusCommand {
  type: 'check-status';
  node: string;
  checkID: string;
  status: HealthStatus;
  output: string;
  at?: number;
}

export interface KVSetCommand {
  type: 'kv-set';
  key: string;
  /** base64 or null */
  value: string | null;
  flags: number;
  cas?: number;
  acquire?: string;
  release?: string;
  at: number;
}

export interface KVDeleteCommand {
  type: 'kv-delete';
  key: string;
  recurse: boolean;
  cas?: number;
}

export interface TxnKVOp {
  Verb: string;
  Key: string;
  Value: string | null;
  Flags: number;
  Index: number;
  Session: string;
}

export interface TxnCommand {
  type: 'txn';
  ops: TxnKVOp[];
  at: number;
}

export interface SessionCreateCommand {
  type: 'session-create';
  session: Omit<Session, 'CreateIndex' | 'ModifyIndex'>;
}

export interface SessionDestroyCommand {
  type: 'session-destroy';
  id: string;
  at: number;
}

/**
 * A session's TTL starts again. Changes nothing in the state (no index moves, as in Consul); it
 * goes through the log so that a renew sent to any server reaches the leader, which times TTLs.
 */
export interface SessionRenewCommand {
  type: 'session-renew';
  id: string;
}

/**
 * Moves the virtual IPs to another range (the server's configured one differs from the state's).
 * A logged command, so replaying the log gives every replica the same addresses.
 */
export interface VipRangeCommand {
  type: 'vip-range';
  range: string;
}

export type Command =
  | RegisterCommand
  | DeregisterCommand
  | CheckStatusCommand
  | KVSetCommand
  | KVDeleteCommand
  | TxnCommand
  | SessionCreateCommand
  | SessionDestroyCommand
  | SessionRenewCommand
  | AclCommand
  | CaCommand
  | ConfigCommand
  | VipRangeCommand
  | EventFireCommand
  | QueryCommand
  | CoordinateSetCommand;
