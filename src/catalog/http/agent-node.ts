/**
 * The node of the agent a request came through. An agent forwarding a request sets
 * X-Trellis-Agent-Node (it replaces whatever the client sent); a request made to the server
 * directly is the server's own agent's. It only ever chooses what an answer is about (events
 * for that node, sorting near it), never what a token may do.
 */
import type { FastifyRequest } from 'fastify';
import type { CatalogContext } from './context.js';

export const AGENT_NODE_HEADER = 'x-trellis-agent-node';

export function agentNode(ctx: CatalogContext, req: FastifyRequest): string {
  const h = req.headers[AGENT_NODE_HEADER];
  const v = Array.isArray(h) ? h[0] : h;
  return v ? v : ctx.nodeName;
}
