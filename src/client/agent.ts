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
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';
import type { AgentSelf, TtlStatus } from './types.js';

export interface WriteOptions {
  signal?: AbortSignal;
}

export interface RegisterServiceOptions extends WriteOptions {
  /** Drop the service's checks that the registration no longer lists. */
  replaceExistingChecks?: boolean;
}

/** The agent's nftables capture (GET/PUT/DELETE /v1/agent/trellis/redirect). */
export interface RedirectView {
  Paused: boolean;
  /** paused, absent (no table), in-sync, drifted, or unknown (the table cannot be read: StatusError says why). */
  State: string;
  Diff?: string;
  StatusError?: string;
  Plan?: unknown;
  Ruleset?: string;
  AppliedAt?: string;
  Error?: string;
  Repairs: number;
}

export interface AgentApi {
  self(opts?: QueryOptions): Promise<QueryResult<AgentSelf>>;
  /** The capture in force and the live table's drift. */
  redirect(opts?: WriteOptions): Promise<RedirectView>;
  /** The ruleset the agent would apply now. */
  redirectDryRun(opts?: WriteOptions): Promise<{ Plan: unknown; Ruleset: string }>;
  /** Applies the ruleset and resumes capture. */
  redirectApply(opts?: WriteOptions): Promise<RedirectView>;
  /** Removes the ruleset and pauses capture until redirectApply. */
  redirectRemove(opts?: WriteOptions): Promise<RedirectView>;
  members(opts?: QueryOptions & { wan?: boolean }): Promise<QueryResult<Member[]>>;
  services(opts?: QueryOptions): Promise<QueryResult<Record<string, AgentService>>>;
  checks(opts?: QueryOptions): Promise<QueryResult<Record<string, HealthCheck>>>;
  registerService(reg: ServiceRegistration, opts?: RegisterServiceOptions): Promise<void>;
  deregisterService(id: string, opts?: WriteOptions): Promise<void>;
  registerCheck(check: CheckRegistration, opts?: WriteOptions): Promise<void>;
  deregisterCheck(id: string, opts?: WriteOptions): Promise<void>;
  /** Sets a TTL check to passing, warning or critical; `note` becomes its output. */
  ttl(id: string, status: TtlStatus, note?: string, opts?: WriteOptions): Promise<void>;
  /**
   * Drains the host and stops the agent (Trellis's own): answers once the drain is over.
   * `timeout` and `grace` are durations (30s).
   */
  drain(
    args: { timeout?: string; grace?: string },
    opts?: WriteOptions,
  ): Promise<{ Marked: boolean; Cut: number }>;
}

export function createAgentApi(t: Transport): AgentApi {
  const put = async (
    path: string,
    opts: WriteOptions | undefined,
    extra: { body?: unknown; query?: Record<string, string | boolean | undefined> } = {},
  ): Promise<void> => {
    await t.request({ method: 'PUT', path, signal: opts?.signal, ...extra });
  };
  const redirect = async <T>(method: 'GET' | 'PUT' | 'DELETE', opts?: WriteOptions, dry = false) =>
    jsonValue(
      await t.request<T>({
        method,
        path: '/v1/agent/trellis/redirect',
        signal: opts?.signal,
        ...(dry ? { query: { 'dry-run': true } } : {}),
      }),
    );
  return {
    self: (opts) => read(t, '/v1/agent/self', opts),
    redirect: (opts) => redirect<RedirectView>('GET', opts),
    redirectDryRun: (opts) => redirect<{ Plan: unknown; Ruleset: string }>('GET', opts, true),
    redirectApply: (opts) => redirect<RedirectView>('PUT', opts),
    redirectRemove: (opts) => redirect<RedirectView>('DELETE', opts),
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
    drain: async (args, opts) =>
      jsonValue(
        await t.request<{ Marked: boolean; Cut: number }>({
          method: 'PUT',
          path: '/v1/agent/drain',
          signal: opts?.signal,
          query: { timeout: args.timeout, grace: args.grace },
        }),
      ),
  };
}
