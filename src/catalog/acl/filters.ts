/**
 * Read results narrowed to what a token may see, as Consul filters them: rows the token cannot
 * read are dropped rather than refused, so one list endpoint serves every token. Each filter
 * returns its input unchanged (the same object) when nothing was dropped, so the caller can
 * reuse a cached answer and knows when to say X-Consul-Results-Filtered-By-ACLs.
 */
import type {
  CatalogService,
  HealthCheck,
  KVPair,
  Node,
  ServiceEntry,
  Session,
} from '../../api/index.js';
import type { Authorizer } from '../../policy/index.js';

function keep<T>(list: T[], pred: (x: T) => boolean): T[] {
  const out = list.filter(pred);
  return out.length === list.length ? list : out;
}

const nodeRead = (a: Authorizer, n: string): boolean => a.allowed('node', n, 'read');
const serviceRead = (a: Authorizer, s: string): boolean => a.allowed('service', s, 'read');

export const filters = {
  nodes: (list: Node[], a: Authorizer): Node[] => keep(list, (n) => nodeRead(a, n.Node)),

  serviceNames<T>(map: Record<string, T>, a: Authorizer): Record<string, T> {
    const names = Object.keys(map);
    const allowed = names.filter((s) => serviceRead(a, s));
    if (allowed.length === names.length) return map;
    return Object.fromEntries(allowed.map((s) => [s, map[s]!]));
  },

  catalogService: (list: CatalogService[], a: Authorizer): CatalogService[] =>
    keep(list, (s) => serviceRead(a, s.ServiceName) && nodeRead(a, s.Node)),

  healthService: (list: ServiceEntry[], a: Authorizer): ServiceEntry[] =>
    keep(list, (e) => serviceRead(a, e.Service.Service) && nodeRead(a, e.Node.Node)),

  checks: (list: HealthCheck[], a: Authorizer): HealthCheck[] =>
    keep(list, (c) =>
      c.ServiceName ? serviceRead(a, c.ServiceName) && nodeRead(a, c.Node) : nodeRead(a, c.Node),
    ),

  /** A node with its services: nothing without node:read, then services by service:read. */
  nodeServices<
    S extends { Service: string },
    T extends { Node: unknown; Services: S[] | Record<string, S> },
  >(value: T | null, nodeName: string, a: Authorizer): T | null {
    if (!value) return value;
    if (!nodeRead(a, nodeName)) return null;
    const svcs = value.Services;
    if (Array.isArray(svcs)) {
      const kept = keep(svcs, (s) => serviceRead(a, s.Service));
      return kept === svcs ? value : { ...value, Services: kept };
    }
    const entries = Object.entries(svcs);
    const kept = entries.filter(([, s]) => serviceRead(a, s.Service));
    return kept.length === entries.length
      ? value
      : { ...value, Services: Object.fromEntries(kept) };
  },

  kv: (list: KVPair[], a: Authorizer): KVPair[] =>
    keep(list, (e) => a.allowed('key', e.Key, 'read')),

  keys: (list: string[], a: Authorizer): string[] => keep(list, (k) => a.allowed('key', k, 'read')),

  sessions: (list: Session[], a: Authorizer): Session[] =>
    keep(list, (s) => a.allowed('session', s.Node, 'read')),
};
