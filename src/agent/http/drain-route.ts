/**
 * PUT /v1/agent/drain?timeout=30s&grace=2s (Trellis's own; `trellis agent drain`): drains this
 * host (TrellisAgent.drain: node maintenance in the catalog, a grace while callers move away,
 * then the sidecars stop accepting and finish what is open) and then stops the agent. Answers
 * once the drain is over, just before the agent exits: `{"Marked": bool, "Cut": n}`.
 * Needs agent:write on this node, as Consul's /v1/agent/leave does.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest, parseDuration } from '../../core/index.js';
import {
  param,
  query,
  requestToken,
  route,
  sendJSON,
  type Query,
} from '../../httpkit/consul-http.js';
import { requireAllowed } from '../../policy/index.js';
import type { TrellisAgent } from '../agent.js';
import { DEFAULT_DRAIN_GRACE_MS, DEFAULT_DRAIN_TIMEOUT_MS } from '../drain-defaults.js';

export { DEFAULT_DRAIN_GRACE_MS, DEFAULT_DRAIN_TIMEOUT_MS };

/** A duration query parameter (Go syntax: 30s, 1m30s), or `fallback` when absent. */
function durationParam(q: Query, name: string, fallback: number): number {
  const text = param(q, name);
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms < 0)
    throw badRequest(`${name}: not a duration (e.g. 30s, 1m30s): ${JSON.stringify(text)}`, name);
  return ms;
}

export function drainRoute(app: FastifyInstance, agent: TrellisAgent): void {
  route(app, ['PUT'], '/v1/agent/drain', async (req, reply) => {
    const a = await agent.resolveToken(requestToken(req));
    requireAllowed(a, 'agent', agent.opts.node.node, 'write');
    const q = query(req);
    const timeoutMs = durationParam(q, 'timeout', DEFAULT_DRAIN_TIMEOUT_MS);
    const graceMs = durationParam(q, 'grace', DEFAULT_DRAIN_GRACE_MS);
    const r = await agent.drainThenExit({ timeoutMs, graceMs });
    return sendJSON(reply, { Marked: r.marked, Cut: r.cut });
  });
}
