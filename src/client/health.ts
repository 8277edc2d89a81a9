/**
 * /v1/health: service instances with their checks, and checks by service, node or state.
 */
import type { HealthCheck, ServiceEntry } from '../api/index.js';
import { tagQuery } from './catalog.js';
import { read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';
import type { HealthState } from './types.js';

export interface HealthServiceOptions extends QueryOptions {
  /** Only instances whose checks are all passing. */
  passing?: boolean;
  tag?: string | string[];
}

export interface HealthApi {
  service(name: string, opts?: HealthServiceOptions): Promise<QueryResult<ServiceEntry[]>>;
  /** The mesh-capable instances of a service: its sidecar proxies (and native services). */
  connect(name: string, opts?: HealthServiceOptions): Promise<QueryResult<ServiceEntry[]>>;
  /** Every check of every instance of a service. */
  checks(service: string, opts?: QueryOptions): Promise<QueryResult<HealthCheck[]>>;
  /** A node's own checks and those of its services. */
  node(node: string, opts?: QueryOptions): Promise<QueryResult<HealthCheck[]>>;
  state(state: HealthState, opts?: QueryOptions): Promise<QueryResult<HealthCheck[]>>;
}

export function createHealthApi(t: Transport): HealthApi {
  return {
    service: (name, opts) =>
      read(t, `/v1/health/service/${segment(name, 'service name')}`, opts, {
        query: { passing: opts?.passing, tag: tagQuery(opts?.tag) },
      }),
    connect: (name, opts) =>
      read(t, `/v1/health/connect/${segment(name, 'service name')}`, opts, {
        query: { passing: opts?.passing, tag: tagQuery(opts?.tag) },
      }),
    checks: (service, opts) =>
      read(t, `/v1/health/checks/${segment(service, 'service name')}`, opts),
    node: (node, opts) => read(t, `/v1/health/node/${segment(node, 'node name')}`, opts),
    state: (state, opts) => read(t, `/v1/health/state/${segment(state, 'state')}`, opts),
  };
}
