/** /v1/status/* and the agents' heartbeat endpoint. */
import type { FastifyInstance } from 'fastify';
import { canonicalize, isObject, name, str } from '../../api/index.js';
import { badRequest, parseDuration } from '../../core/index.js';
import { jsonBody, route, sendJSON } from '../../httpkit/consul-http.js';
import type { CatalogContext } from './context.js';
import { propose } from './write.js';
import { authz, requireNamed } from './authz.js';

const MAX_HEARTBEAT_TTL_MS = 10 * 60_000;

export function statusRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  // Consul's shapes: the leader's "ip:8300" ("" when there is none), every live server's.
  route(app, ['GET'], '/v1/status/leader', async (_req, reply) =>
    sendJSON(reply, ctx.leadership.leader()?.address ?? ''),
  );
  route(app, ['GET'], '/v1/status/peers', async (_req, reply) =>
    sendJSON(
      reply,
      ctx.leadership.servers().map((s) => s.address),
    ),
  );

  // Trellis-specific: an agent says "my node is alive for TTL"; see catalog/liveness.ts.
  route(app, ['PUT'], '/v1/internal/trellis/heartbeat', async (req, reply) => {
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['Node', 'Address', 'TTL', 'ID', 'Meta', 'Datacenter']);
    const node = name(o, 'Node', '', true);
    requireNamed(authz(ctx, req), 'node', node, 'write');
    const address = str(o, 'Address', '');
    if (!address) throw badRequest('Address: missing (required)', 'Address');
    const ttlMs = parseDuration(str(o, 'TTL', '') || '30s');
    if (!ttlMs || ttlMs > MAX_HEARTBEAT_TTL_MS)
      throw badRequest('TTL: must be a duration between 1ms and 10m', 'TTL');
    const meta = isObject(o.Meta) ? (o.Meta as Record<string, string>) : undefined;
    await ctx.liveness.heartbeat({
      node,
      address,
      ttlMs,
      nodeId: str(o, 'ID', ''),
      ...(meta ? { meta } : {}),
    });
    return sendJSON(reply, true);
  });

  // Trellis-specific: an agent leaving on purpose removes its node (Consul's leave); with
  // operator:write, any node (an agent's /v1/agent/force-leave).
  route(app, ['PUT'], '/v1/internal/trellis/leave/:node', async (req, reply) => {
    const node = (req.params as { node: string }).node;
    const a = authz(ctx, req);
    if (!a.global('operator', 'write')) requireNamed(a, 'node', node, 'write');
    ctx.liveness.forget(node);
    await propose(ctx, { type: 'deregister', node, at: ctx.clock.now() });
    return sendJSON(reply, true);
  });
}
