/**
 * How current a server's in-memory state is, and what reads do about it (Consul's consistency
 * modes, docs/ha.md "Consistency"):
 *
 *   ?consistent      answered only after this server applied everything the store holds now
 *                    (etcd: one linearizable get, then the watch catching up); 500 naming etcd
 *                    when that cannot be confirmed
 *   default, ?stale  answered from memory; X-Consul-LastContact says how old it may be (ms)
 *   ?max_stale=D     refused (500) when LastContact exceeds D
 *
 * The embedded store is the only copy of the state: always current, LastContact 0.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, MeshError, parseDuration } from '../../core/index.js';
import { flag, param, query } from '../../httpkit/consul-http.js';

export interface Freshness {
  /** Resolves once the state holds every write the store had acknowledged when it was called. */
  catchUp(): Promise<void>;
  /** Milliseconds since the state was last confirmed current (0: always current). */
  lastContactMs(): number;
}

/** The embedded store: the state is the store. */
export const ALWAYS_CURRENT: Freshness = {
  catchUp: () => Promise.resolve(),
  lastContactMs: () => 0,
};

/** Reads of the catalog API; the server's own agent routes answer from the agent. */
function isCatalogRead(req: FastifyRequest): boolean {
  return (
    (req.method === 'GET' || req.method === 'HEAD') &&
    req.url.startsWith('/v1/') &&
    !req.url.startsWith('/v1/agent/')
  );
}

export function installFreshness(app: FastifyInstance, freshness: Freshness): void {
  app.addHook('preHandler', async (req) => {
    if (!isCatalogRead(req)) return;
    const q = query(req);
    const consistent = flag(q, 'consistent');
    // ?stale with ?consistent is refused by the route itself (400).
    if (consistent && !flag(q, 'stale')) {
      await freshness.catchUp();
      return;
    }
    const maxStale = param(q, 'max_stale');
    if (maxStale === undefined || consistent) return;
    const limit = parseDuration(maxStale);
    if (limit === undefined || limit < 0)
      throw badRequest(
        `Invalid max_stale: "${maxStale.slice(0, 40)}" (use a duration like "5s")`,
        'max_stale',
      );
    const age = freshness.lastContactMs();
    if (age > limit)
      throw new MeshError(
        'MESH_ERR_STALE',
        'system',
        `this server's state was last confirmed current with etcd ${age} ms ago, more than max_stale (${limit} ms); etcd may be unreachable or without quorum`,
        { status: 500 },
      );
  });
  // Every read sets X-Consul-LastContact (setQueryMeta); here it gets this server's value.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.hasHeader('X-Consul-LastContact'))
      reply.header('X-Consul-LastContact', String(freshness.lastContactMs()));
    return payload;
  });
}
