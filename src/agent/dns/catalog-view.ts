/**
 * What the agent's DNS answers from: the servers' catalog, through the agent's client. Each
 * answer is kept for a second (a burst of lookups for one name costs one request), and the
 * last answer is served while the servers are unreachable, so names keep resolving through a
 * server outage as the proxies keep serving.
 */
import type { TrellisClient } from '../../client/index.js';
import { isMeshError, parseDuration, type Clock } from '../../core/index.js';
import type { VipSource } from '../capture/vip-watch.js';
import type { DnsInstance, DnsView } from './answer.js';

const FRESH_MS = 1000;

interface Cached<T> {
  at: number;
  value: T;
}

export interface CatalogViewOptions {
  /** Consul's dns_config.only_passing: leave out instances with warning checks too. */
  onlyPassing?: boolean;
  /**
   * The agent's virtual-IP watch (kept current by a blocking query): the same map the
   * nftables rules are built from. Without it, or until it has an answer, VIPs are fetched.
   */
  vips?: VipSource;
}

/** Critical checks always keep an instance out of DNS; warning ones only with only_passing. */
function healthy(checks: readonly { Status: string }[], onlyPassing: boolean): boolean {
  return checks.every((c) => c.Status !== 'critical' && (!onlyPassing || c.Status !== 'warning'));
}

export function catalogDnsView(
  client: TrellisClient,
  clock: Clock,
  opts: CatalogViewOptions = {},
): DnsView {
  const onlyPassing = opts.onlyPassing ?? false;
  // Subscribing starts the watch's loop (it only runs for someone).
  opts.vips?.onChange(() => undefined);
  const cache = new Map<string, Cached<unknown>>();
  async function cached<T>(key: string, fetch: () => Promise<T>): Promise<T> {
    const hit = cache.get(key) as Cached<T> | undefined;
    const now = clock.now();
    if (hit && now - hit.at < FRESH_MS) return hit.value;
    try {
      const value = await fetch();
      cache.set(key, { at: now, value });
      // Names come and go; an old entry is dropped when the map grows past a bound.
      if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
      return value;
    } catch (err) {
      if (hit) return hit.value;
      throw err;
    }
  }
  return {
    healthyInstances: (service, tag) =>
      cached(`svc\0${service}\0${tag ?? ''}`, async () => {
        // Only passing is what ?passing asks the server for; otherwise filter here.
        const r = await client.health.service(service, {
          ...(onlyPassing ? { passing: true } : {}),
          ...(tag ? { tag } : {}),
        });
        return r.value
          .filter((e) => healthy(e.Checks ?? [], onlyPassing))
          .map((e): DnsInstance => ({
            node: e.Node.Node,
            nodeAddress: e.Node.Address,
            serviceAddress: e.Service.Address,
            port: e.Service.Port,
            tags: e.Service.Tags ?? [],
          }));
      }),
    preparedQuery: (name) =>
      cached(`query\0${name}`, async () => {
        let r;
        try {
          // Sorted near this agent's node, as Consul's DNS runs a query.
          r = await client.query.execute(name, { near: '_agent' });
        } catch (err) {
          if (isMeshError(err) && err.status === 404) return undefined;
          throw err;
        }
        const ttlMs = r.value.DNS.TTL ? parseDuration(r.value.DNS.TTL) : undefined;
        return {
          instances: r.value.Nodes.map((e): DnsInstance => ({
            node: e.Node.Node,
            nodeAddress: e.Node.Address,
            serviceAddress: e.Service.Address,
            port: e.Service.Port,
            tags: e.Service.Tags ?? [],
          })),
          ...(ttlMs !== undefined ? { ttl: Math.floor(ttlMs / 1000) } : {}),
        };
      }),
    nodeAddress: (node) =>
      cached(`node\0${node}`, async () => (await client.catalog.node(node)).value?.Node.Address),
    virtualIp: async (service) => {
      const watched = opts.vips?.current();
      if (watched) return watched.get(service);
      return (await cached('vips', async () => (await client.catalog.virtualIps()).value))[service];
    },
  };
}
