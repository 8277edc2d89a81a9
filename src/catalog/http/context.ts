/**
 * What every catalog route needs: the state to read, the writer to change it, time, and the
 * identity of this server.
 */
import type { Clock, Random } from '../../core/index.js';
import type { StateStore } from '../state/state-store.js';
import type { CommandLog } from '../state/command-log.js';
import type { Liveness } from '../liveness.js';
import type { SessionTimers } from '../session-timers.js';
import type { ResponseCache } from './response-cache.js';
import type { AclResolver } from '../acl/resolver.js';
import type { CertificateAuthority } from '../connect/authority.js';
import type { SigningLimits } from '../connect/rate-limit.js';
import type { AuditLog } from '../../httpkit/audit.js';
import type { Leadership } from '../leadership.js';

export interface CatalogLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One server of the cluster, as the operator endpoints report it. */
export interface ServerMember {
  id: string;
  node: string;
  /** "ip:port" of its server (RPC-style) address. */
  address: string;
  leader: boolean;
  voter: boolean;
  alive: boolean;
  /** Since when (ms) it has been in this state. */
  since: number;
  /** The state index at which it joined the server set. */
  configIndex: number;
}

export interface CatalogContext {
  state: StateStore;
  writer: CommandLog;
  clock: Clock;
  random: Random;
  datacenter: string;
  /** This server's node name and RPC-style address ("ip:8300") for /status. */
  nodeName: string;
  advertise: string;
  liveness: Liveness;
  sessions: SessionTimers;
  log: CatalogLogger;
  newId(): string;
  acl: AclResolver;
  ca: CertificateAuthority;
  /** The advertised host:port of this server's HTTPS API, once it listens. */
  httpsAdvertise?: string;
  /** Per-agent limits on certificate signing. */
  signing: SigningLimits;
  /** Which server leads the once-only work, and which servers are alive. */
  leadership: Leadership;
  /** The live servers of the cluster (this one alone with the embedded store). */
  servers(): ServerMember[];
  /** Trellis version reported by the operator endpoints. */
  version: string;
  /** ACL refusals and CA operations, one line each (docs/security.md). */
  audit: AuditLog;
  /** Reads answered since the last write, shared by identical queries. */
  responses: ResponseCache;
}
