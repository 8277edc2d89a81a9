/**
 * /v1/agent: the local agent's services and checks, its gossip view, and TTL updates.
 */
import type {
  AgentService,
  CheckRegistration,
  HealthCheck,
  Member,
  ServiceRegistration,
} from '../api/index.js';
import { read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';
import type { AgentSelf, TtlStatus } from './types.js';

export interface WriteOptions {
  signal?: AbortSignal;
}

export interface RegisterServiceOptions extends WriteOptions {
  /** Drop the service's checks that the registration no longer lists. */
  replaceExistingChecks?: boolean;
}

export interface AgentApi {
  self(opts?: QueryOptions): Promise<QueryResult<AgentSelf>>;
  members(opts?: QueryOptions & { wan?: boolean }): Promise<QueryResult<Member[]>>;
  services(opts?: QueryOptions): Promise<QueryResult<Record<string, AgentService>>>;
  checks(opts?: QueryOptions): Promise<QueryResult<Record<string, HealthCheck>>>;
  registerService(reg: ServiceRegistration, opts?: RegisterServiceOptions): Promise<void>;
  deregisterService(id: string, opts?: WriteOptions): Promise<void>;
  registerCheck(check: CheckRegistration, opts?: WriteOptions): Promise<void>;
  deregisterCheck(id: string, opts?: WriteOptions): Promise<void>;
  /** Sets a TTL check to passing, warning or critical; `note` becomes its output. */
  ttl(id: string, status: TtlStatus, note?: string, opts?: WriteOptions): Promise<void>;
}

export function createAgentApi(t: Transport): AgentApi {
  const put = async (
    path: string,
    opts: WriteOptions | undefined,
    extra: { body?: unknown; query?: Record<string, string | boolean | undefined> } = {},
  ): Promise<void> => {
    await t.request({ method: 'PUT', path, signal: opts?.signal, ...extra });
  };
  return {
    self: (opts) => read(t, '/v1/agent/self', opts),
    members: (opts) => read(t, '/v1/agent/members', opts, { query: { wan: opts?.wan } }),
    services: (opts) => read(t, '/v1/agent/services', opts),
    checks: (opts) => read(t, '/v1/agent/checks', opts),
    registerService: (reg, opts) =>
      put('/v1/agent/service/register', opts, {
        body: reg,
        query: { 'replace-existing-checks': opts?.replaceExistingChecks },
      }),
    deregisterService: (id, opts) =>
      put(`/v1/agent/service/deregister/${segment(id, 'service id')}`, opts),
    registerCheck: (check, opts) => put('/v1/agent/check/register', opts, { body: check }),
    deregisterCheck: (id, opts) =>
      put(`/v1/agent/check/deregister/${segment(id, 'check id')}`, opts),
    ttl: (id, status, note, opts) =>
      put(`/v1/agent/check/${status}/${segment(id, 'check id')}`, opts, { query: { note } }),
  };
}
