/**
 * The catalog's reads. Each returns the value, the X-Consul-Index it answers with (the last
 * change of what it read, never below 1) and the WatchSpec a blocking query waits on.
 */
import type {
  AgentService,
  CatalogService,
  HealthCheck,
  HealthStatus,
  KVPair,
  Node,
  ServiceEntry,
  Session,
} from '../../api/index.js';
import type { ServiceRow } from './catalog-table.js';
import { K } from './index-table.js';
import type { StateStore } from './state-store.js';
import type { WatchSpec } from './watch.js';

export interface QueryResult<T> {
  index: number;
  value: T;
  watch: WatchSpec;
}

export interface ServiceQuery {
  tags?: string[];
  nodeMeta?: Record<string, string>;
  passing?: boolean;
  connect?: boolean;
}

function result<T>(st: StateStore, keys: string[], value: T): QueryResult<T> {
  return { index: Math.max(1, st.indexes.max(keys)), value, watch: { keys } };
}

function nodeMatches(node: Node | undefined, meta: Record<string, string> | undefined): boolean {
  if (!meta) return true;
  if (!node) return false;
  for (const [k, v] of Object.entries(meta)) if (node.Meta[k] !== v) return false;
  return true;
}

function hasTags(svc: AgentService, tags: string[] | undefined): boolean {
  if (!tags) return true;
  for (const t of tags) if (!svc.Tags.includes(t)) return false;
  return true;
}

const byNodeThenId = (a: ServiceRow, b: ServiceRow): number =>
  a.node < b.node
    ? -1
    : a.node > b.node
      ? 1
      : a.svc.ID < b.svc.ID
        ? -1
        : a.svc.ID > b.svc.ID
          ? 1
          : 0;

/** Instances of a service (or, with `connect`, the proxies and native instances for it). */
function instances(st: StateStore, name: string, q: ServiceQuery): ServiceRow[] {
  const rows: ServiceRow[] = [];
  if (q.connect) {
    for (const byName of st.catalog.servicesByName.values()) {
      for (const r of byName.values()) {
        const isProxy =
          r.svc.Kind === 'connect-proxy' && r.svc.Proxy?.DestinationServiceName === name;
        const isNative = r.svc.Service === name && r.svc.Connect?.Native === true;
        if (isProxy || isNative) rows.push(r);
      }
    }
  } else {
    const byName = st.catalog.servicesByName.get(name);
    if (byName) for (const r of byName.values()) rows.push(r);
  }
  const out: ServiceRow[] = [];
  for (const r of rows) {
    if (!hasTags(r.svc, q.tags)) continue;
    if (!nodeMatches(st.catalog.nodes.get(r.node), q.nodeMeta)) continue;
    out.push(r);
  }
  return out.sort(byNodeThenId);
}

export function catalogServices(
  st: StateStore,
  nodeMeta?: Record<string, string>,
): QueryResult<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const name of st.catalog.serviceNames()) {
    if (!nodeMeta) {
      out[name] = st.catalog.serviceTags(name);
      continue;
    }
    // Filtering by node metadata has to look at each instance's node.
    const tags = new Set<string>();
    let any = false;
    for (const r of st.catalog.servicesByName.get(name)!.values()) {
      if (!nodeMatches(st.catalog.nodes.get(r.node), nodeMeta)) continue;
      any = true;
      for (const t of r.svc.Tags) tags.add(t);
    }
    if (any) out[name] = [...tags].sort();
  }
  return result(st, nodeMeta ? [K.services, K.nodes] : [K.services], out);
}

/** Virtual IPs of mesh services, by name (they change only with services). */
export function virtualIps(st: StateStore): QueryResult<Record<string, string>> {
  return result(st, [K.services], Object.fromEntries(st.catalog.vips.all()));
}

export function catalogNodes(
  st: StateStore,
  nodeMeta?: Record<string, string>,
): QueryResult<Node[]> {
  const nodes = [...st.catalog.nodes.values()].filter((n) => nodeMatches(n, nodeMeta));
  nodes.sort((a, b) => (a.Node < b.Node ? -1 : a.Node > b.Node ? 1 : 0));
  return result(st, [K.nodes], nodes);
}

export function toCatalogService(st: StateStore, r: ServiceRow): CatalogService {
  const n = st.catalog.nodes.get(r.node)!;
  const s = r.svc;
  return {
    ID: n.ID,
    Node: n.Node,
    Address: n.Address,
    Datacenter: n.Datacenter,
    TaggedAddresses: n.TaggedAddresses,
    NodeMeta: n.Meta,
    ServiceKind: s.Kind ?? '',
    ServiceID: s.ID,
    ServiceName: s.Service,
    ServiceTags: s.Tags,
    ServiceAddress: s.Address,
    ServiceTaggedAddresses: s.TaggedAddresses ?? {},
    ServiceWeights: s.Weights,
    ServiceMeta: s.Meta,
    ServicePort: s.Port,
    ServiceEnableTagOverride: s.EnableTagOverride,
    ServiceProxy: s.Proxy ?? {},
    ServiceConnect: s.Connect ?? {},
    CreateIndex: s.CreateIndex,
    ModifyIndex: s.ModifyIndex,
  };
}

function serviceKey(name: string, q: ServiceQuery): string {
  return q.connect ? `connect:${name}` : K.service(name);
}

export function catalogService(
  st: StateStore,
  name: string,
  q: ServiceQuery = {},
): QueryResult<CatalogService[]> {
  const rows = instances(st, name, q);
  return result(
    st,
    [serviceKey(name, q)],
    rows.map((r) => toCatalogService(st, r)),
  );
}

export function catalogNode(
  st: StateStore,
  name: string,
): QueryResult<{ Node: Node; Services: Record<string, AgentService> } | null> {
  const node = st.catalog.nodes.get(name);
  if (!node) return result(st, [K.node(name)], null);
  const services: Record<string, AgentService> = {};
  const byId = st.catalog.servicesByNode.get(name);
  if (byId) for (const r of [...byId.values()].sort(byNodeThenId)) services[r.svc.ID] = r.svc;
  return result(st, [K.node(name)], { Node: node, Services: services });
}

/** Node checks first (serfHealth leading, as Consul lists it), then the instance's own. */
function entryChecks(st: StateStore, r: ServiceRow): HealthCheck[] {
  const nodeChecks = st.catalog.nodeChecks(r.node).sort(checkOrder);
  return nodeChecks.concat(st.catalog.serviceChecks(r.node, r.svc.ID).sort(checkOrder));
}

function checkOrder(a: HealthCheck, b: HealthCheck): number {
  if (a.CheckID === 'serfHealth') return -1;
  if (b.CheckID === 'serfHealth') return 1;
  return a.CheckID < b.CheckID ? -1 : a.CheckID > b.CheckID ? 1 : 0;
}

export function healthService(
  st: StateStore,
  name: string,
  q: ServiceQuery = {},
): QueryResult<ServiceEntry[]> {
  const out: ServiceEntry[] = [];
  for (const r of instances(st, name, q)) {
    const checks = entryChecks(st, r);
    if (q.passing && checks.some((c) => c.Status !== 'passing')) continue;
    out.push({ Node: st.catalog.nodes.get(r.node)!, Service: r.svc, Checks: checks });
  }
  return result(st, [serviceKey(name, q)], out);
}

export function healthChecks(
  st: StateStore,
  name: string,
  nodeMeta?: Record<string, string>,
): QueryResult<HealthCheck[]> {
  const out: HealthCheck[] = [];
  for (const r of instances(st, name, { nodeMeta }))
    out.push(...st.catalog.serviceChecks(r.node, r.svc.ID).sort(checkOrder));
  return result(st, [K.service(name)], out);
}

export function healthNode(st: StateStore, name: string): QueryResult<HealthCheck[]> {
  const byId = st.catalog.checksByNode.get(name);
  const checks = byId ? [...byId.values()].sort(checkOrder) : [];
  return result(st, [K.node(name)], checks);
}

export function healthState(
  st: StateStore,
  state: HealthStatus | 'any',
  nodeMeta?: Record<string, string>,
): QueryResult<HealthCheck[]> {
  const out: HealthCheck[] = [];
  for (const [node, byId] of st.catalog.checksByNode) {
    if (nodeMeta && !nodeMatches(st.catalog.nodes.get(node), nodeMeta)) continue;
    for (const c of byId.values()) if (state === 'any' || c.Status === state) out.push(c);
  }
  out.sort((a, b) => (a.Node < b.Node ? -1 : a.Node > b.Node ? 1 : checkOrder(a, b)));
  return result(st, [K.checks], out);
}

// ---- KV ---------------------------------------------------------------------------------------

function kvResult<T>(st: StateStore, prefix: string, exact: boolean, value: T): QueryResult<T> {
  const index = Math.max(1, st.kv.maxIndex(prefix, exact));
  const watch: WatchSpec = exact
    ? { keys: [], kvKeys: [prefix] }
    : { keys: [], kvPrefixes: [prefix] };
  return { index, value, watch };
}

export function kvGet(st: StateStore, key: string, recurse: boolean): QueryResult<KVPair[]> {
  if (!recurse) {
    const e = st.kv.get(key);
    return kvResult(st, key, true, e ? [e] : []);
  }
  return kvResult(st, key, false, [...st.kv.withPrefix(key)]);
}

export function kvKeys(st: StateStore, prefix: string, separator: string): QueryResult<string[]> {
  const out: string[] = [];
  let last = '';
  for (const e of st.kv.withPrefix(prefix)) {
    let k = e.Key;
    if (separator) {
      const i = k.indexOf(separator, prefix.length);
      if (i >= 0) k = k.slice(0, i + separator.length);
    }
    if (k !== last) out.push(k);
    last = k;
  }
  return kvResult(st, prefix, false, out);
}

// ---- sessions ---------------------------------------------------------------------------------

export function sessionList(st: StateStore): QueryResult<Session[]> {
  return result(
    st,
    [K.sessions],
    [...st.sessions.values()].sort((a, b) => a.CreateIndex - b.CreateIndex),
  );
}

export function sessionInfo(st: StateStore, id: string): QueryResult<Session[]> {
  const s = st.sessions.get(id);
  return result(st, [K.session(id)], s ? [s] : []);
}

export function sessionsOfNode(st: StateStore, node: string): QueryResult<Session[]> {
  const out = [...st.sessions.values()].filter((s) => s.Node === node);
  return result(
    st,
    [K.nodeSessions(node)],
    out.sort((a, b) => a.CreateIndex - b.CreateIndex),
  );
}
