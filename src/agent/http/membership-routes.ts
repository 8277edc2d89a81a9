/**
 * Consul's membership writes, adapted to a mesh without gossip:
 *   PUT /v1/agent/join/:address       (agent:write) add a server this agent fails over to,
 *                                     once it answers for this datacenter; kept until restart
 *   PUT /v1/agent/force-leave/:node   (operator:write) remove a node from the catalog now, as a
 *                                     failed Consul member forced to "left" is reaped; a node
 *                                     whose agent still runs registers again at its next
 *                                     heartbeat and sync, as a live Consul member refutes it
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../../core/index.js';
import { flag, query, requestToken, route } from '../../httpkit/consul-http.js';
import { permissionDenied, requireAllowed, type Authorizer } from '../../policy/index.js';
import type { Node } from '../../api/index.js';
import type { TrellisAgent } from '../agent.js';

export function membershipRoutes(app: FastifyInstance, agent: TrellisAgent): void {
  const node = agent.opts.node.node;
  const authz = (req: FastifyRequest): Promise<Authorizer> => agent.resolveToken(requestToken(req));
  const noWan = (req: FastifyRequest): void => {
    if (flag(query(req), 'wan'))
      throw badRequest('WAN is not supported: Trellis serves one datacenter', 'wan');
  };

  route(app, ['PUT'], '/v1/agent/join/:address', async (req, reply) => {
    requireAllowed(await authz(req), 'agent', node, 'write');
    noWan(req);
    const address = (req.params as { address: string }).address.trim();
    if (!address) throw badRequest('Missing address to join', 'address');
    await agent.addServer(address);
    return reply.code(200).send();
  });

  route(app, ['PUT'], '/v1/agent/force-leave/:node', async (req, reply) => {
    const a = await authz(req);
    if (!a.global('operator', 'write')) throw permissionDenied(a, 'operator:write');
    noWan(req);
    // ?prune is accepted: removing the node from the catalog already forgets it entirely.
    const target = (req.params as { node: string }).node;
    if (target === node)
      throw badRequest(
        `cannot force-leave this agent's own node "${node}": stop the agent (SIGTERM) to leave`,
        'node',
      );
    // The servers decide with the caller's token (operator:write, or node:write on the node).
    const headers = { 'x-consul-token': requestToken(req) || 'anonymous' };
    const path = `/v1/catalog/node/${encodeURIComponent(target)}`;
    const found = await agent.client.request<{ Node: Node } | null>({
      method: 'GET',
      path,
      headers,
    });
    const current = found.body as { Node: Node } | null;
    if (!current) throw notFound(`No node found with name "${target}"`);
    if (current.Node.Meta['trellis-role'] === 'server')
      throw badRequest(`"${target}" is a server: a server cannot be forced to leave`, 'node');
    await agent.client.request({
      method: 'PUT',
      path: `/v1/internal/trellis/leave/${encodeURIComponent(target)}`,
      headers,
    });
    agent.opts.log.info({ node: target }, 'forced a node to leave');
    return reply.code(200).send();
  });
}
