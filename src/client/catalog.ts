/**
 * /v1/catalog: the cluster-wide view of nodes and services.
 */
import type {
  CatalogDeregistration,
  CatalogRegistration,
  CatalogService,
  Node,
} from '../api/index.js';
import { read, segment, jsonValue, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';
import type { CatalogNode } from './types.js';

export interface CatalogServiceOptions extends QueryOptions {
  /** Only instances carrying this tag (all of them, when several). */
  tag?: string | string[];
}

export interface CatalogApi {
  /** Service names, each with the union of its instances' tags. */
  services(opts?: QueryOptions): Promise<QueryResult<Record<string, string[]>>>;
  nodes(opts?: QueryOptions): Promise<QueryResult<Node[]>>;
  /** Instances of one service; an unknown service gives []. */
  service(name: string, opts?: CatalogServiceOptions): Promise<QueryResult<CatalogService[]>>;
  /** One node and its services; an unknown node gives null. */
  node(name: string, opts?: QueryOptions): Promise<QueryResult<CatalogNode | null>>;
  datacenters(opts?: QueryOptions): Promise<QueryResult<string[]>>;
  /** Virtual IPs of the mesh services the token may read (Trellis' own endpoint). */
  virtualIps(opts?: QueryOptions): Promise<QueryResult<Record<string, string>>>;
  /** `token` overrides the client's token for this write (an agent syncing a service's token). */
  register(reg: CatalogRegistration, opts?: WriteOptions): Promise<boolean>;
  deregister(dereg: CatalogDeregistration, opts?: WriteOptions): Promise<boolean>;
}

export function createCatalogApi(t: Transport): CatalogApi {
  return {
    services: (opts) => read(t, '/v1/catalog/services', opts),
    nodes: (opts) => read(t, '/v1/catalog/nodes', opts),
    service: (name, opts) =>
      read(t, `/v1/catalog/service/${segment(name, 'service name')}`, opts, {
        query: { tag: tagQuery(opts?.tag) },
      }),
    node: (name, opts) => read(t, `/v1/catalog/node/${segment(name, 'node name')}`, opts),
    datacenters: (opts) => read(t, '/v1/catalog/datacenters', opts),
    virtualIps: (opts) => read(t, '/v1/internal/trellis/virtual-ips', opts),
    register: async (reg, opts) =>
      jsonValue(
        await t.request<boolean>({
          method: 'PUT',
          path: '/v1/catalog/register',
          body: reg,
          signal: opts?.signal,
          ...(opts?.token ? { headers: { 'x-consul-token': opts.token } } : {}),
        }),
      ),
    deregister: async (dereg, opts) =>
      jsonValue(
        await t.request<boolean>({
          method: 'PUT',
          path: '/v1/catalog/deregister',
          body: dereg,
          signal: opts?.signal,
          ...(opts?.token ? { headers: { 'x-consul-token': opts.token } } : {}),
        }),
      ),
  };
}

export interface WriteOptions {
  signal?: AbortSignal;
  token?: string;
}

/** The tag parameter, repeated once per tag. */
export function tagQuery(tag: string | string[] | undefined): string[] | undefined {
  if (tag === undefined) return undefined;
  return Array.isArray(tag) ? tag : [tag];
}
