/**
 * Running a prepared query against the catalog, as Consul's execute does:
 *
 *   instances of Service (or its mesh-capable ones with Connect)
 *     -> health: leave out any instance with a critical check (OnlyPassing: any check not
 *        passing), ignoring IgnoreCheckIDs
 *     -> Tags (all of the plain ones, none of the "!" ones; case-insensitive), NodeMeta,
 *        ServiceMeta
 *     -> shuffle, then with a Near node sort by estimated round trip from it
 *     -> Limit
 *
 * Failover: Trellis serves one datacenter, so when nothing is left locally the datacenters a
 * query would fail over to are reported back (`skipped`) rather than queried.
 */
import { compileRegex, type Random } from '../../core/index.js';
import {
  coordinateDistance,
  renderTemplate,
  templateVars,
  type PreparedQueryService,
  type ServiceEntry,
} from '../../api/index.js';
import { K } from './index-table.js';
import { healthService, type QueryResult } from './queries.js';
import { isTemplate, type StoredQuery } from './query-table.js';
import type { StateStore } from './state-store.js';

/** The query a lookup runs: a static query as stored, a template rendered for the name. */
export function renderedQuery(q: StoredQuery, asked: string): StoredQuery {
  if (!isTemplate(q)) return q;
  const re = q.Template.Regexp ? compileRegex(q.Template.Regexp) : undefined;
  const matches = re?.ok ? re.test : () => false;
  // Asked by ID: Consul renders a template with its own name.
  const name = asked === q.ID ? q.Name : asked;
  const vars = templateVars(name, q.Name, q.Template.Regexp, matches);
  return { ...q, Service: renderTemplate(q.Service, q.Template, vars) };
}

export interface ExecuteOptions {
  /** The node to sort near ('' = shuffle only); `_agent` is resolved by the caller. */
  near: string;
  limit: number;
  /** ?connect=true forces a Connect query. */
  connect: boolean;
  random: Random;
}

export interface ExecuteValue {
  nodes: ServiceEntry[];
  /** Failover datacenters Trellis could not query (it serves one datacenter). */
  skipped: string[];
}

export function executeQuery(
  st: StateStore,
  q: StoredQuery,
  datacenter: string,
  opts: ExecuteOptions,
): QueryResult<ExecuteValue> {
  const s = q.Service;
  const base = healthService(st, s.Service, { connect: s.Connect || opts.connect });
  let nodes = base.value.filter((e) => healthy(e, s) && tagsMatch(e, s.Tags) && metaMatch(e, s));
  shuffle(nodes, opts.random);
  const keys = [...base.watch.keys, K.queries];
  if (opts.near && st.catalog.nodes.has(opts.near)) {
    const from = st.coordinates.coordinateOf(opts.near);
    const dist = new Map(
      nodes.map((e) => [e, coordinateDistance(from, st.coordinates.coordinateOf(e.Node.Node))]),
    );
    nodes = nodes.sort((a, b) => dist.get(a)! - dist.get(b)!);
    keys.push(K.coordinates);
  }
  if (opts.limit > 0) nodes = nodes.slice(0, opts.limit);
  const skipped: string[] = [];
  if (nodes.length === 0) {
    if (s.Failover.NearestN > 0) skipped.push(`NearestN=${s.Failover.NearestN}`);
    for (const dc of s.Failover.Datacenters ?? []) if (dc !== datacenter) skipped.push(dc);
  }
  return {
    index: Math.max(1, st.indexes.max(keys)),
    value: { nodes, skipped },
    watch: { keys },
  };
}

function healthy(e: ServiceEntry, s: PreparedQueryService): boolean {
  const ignore = s.IgnoreCheckIDs ?? [];
  for (const c of e.Checks) {
    if (ignore.includes(c.CheckID)) continue;
    if (c.Status === 'critical') return false;
    if (s.OnlyPassing && c.Status !== 'passing') return false;
  }
  return true;
}

function tagsMatch(e: ServiceEntry, tags: string[] | null): boolean {
  if (!tags) return true;
  const have = new Set(e.Service.Tags.map((t) => t.toLowerCase()));
  for (const raw of tags) {
    const t = raw.toLowerCase();
    if (t.startsWith('!')) {
      if (have.has(t.slice(1))) return false;
    } else if (!have.has(t)) return false;
  }
  return true;
}

function metaMatch(e: ServiceEntry, s: PreparedQueryService): boolean {
  for (const [k, v] of Object.entries(s.NodeMeta ?? {})) if (e.Node.Meta[k] !== v) return false;
  for (const [k, v] of Object.entries(s.ServiceMeta ?? {}))
    if (e.Service.Meta[k] !== v) return false;
  return true;
}

/** Fisher-Yates with the injected random source. */
function shuffle<T>(list: T[], random: Random): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
}
