/**
 * The agent's nftables capture, for `trellis redirect-traffic`:
 *
 *   GET    /v1/agent/trellis/redirect           what is in force, the live table's drift, errors
 *   GET    /v1/agent/trellis/redirect?dry-run   the ruleset the agent would apply now
 *   PUT    /v1/agent/trellis/redirect           (re)apply and resume capture after a removal
 *   DELETE /v1/agent/trellis/redirect           remove the table and pause capture (the undo)
 *
 * agent:read for GET, agent:write for the others (they change the host's packet path).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MeshError } from '../../core/index.js';
import { route, sendJSON } from '../../httpkit/consul-http.js';
import { requireAllowed, type Authorizer } from '../../policy/index.js';
import type { TrellisAgent } from '../agent.js';
import type { RedirectManager } from '../capture/redirect-manager.js';

export function redirectRoutes(
  app: FastifyInstance,
  agent: TrellisAgent,
  authz: (req: FastifyRequest) => Promise<Authorizer>,
): void {
  const node = agent.opts.node.node;
  const manager = (): RedirectManager => {
    if (!agent.redirect)
      throw new MeshError(
        'MESH_ERR_UNAVAILABLE',
        'user',
        'this agent runs without nftables capture',
        { status: 501 },
      );
    return agent.redirect;
  };
  const view = async (m: RedirectManager): Promise<object> => {
    const info = m.info();
    const live = await m.status();
    return {
      Paused: info.paused,
      State: info.paused ? 'paused' : live.state,
      ...(live.diff ? { Diff: live.diff } : {}),
      ...(live.error ? { StatusError: live.error } : {}),
      ...(info.plan ? { Plan: info.plan, Ruleset: info.ruleset } : {}),
      ...(info.appliedAt !== undefined
        ? { AppliedAt: new Date(info.appliedAt).toISOString() }
        : {}),
      ...(info.lastError ? { Error: info.lastError } : {}),
      Repairs: info.repairs,
    };
  };

  // One route for the three methods: `route` answers 405 for every method a path lacks.
  route(app, ['GET', 'PUT', 'DELETE'], '/v1/agent/trellis/redirect', async (req, reply) => {
    const write = req.method !== 'GET';
    requireAllowed(await authz(req), 'agent', node, write ? 'write' : 'read');
    const m = manager();
    if (req.method === 'PUT') await m.resume();
    else if (req.method === 'DELETE') await m.pause();
    else if ((req.query as Record<string, unknown>)['dry-run'] !== undefined) {
      const r = await m.dryRun();
      if ('error' in r) throw new MeshError('MESH_ERR_REDIRECT', 'user', r.error, { status: 409 });
      return sendJSON(reply, { Plan: r.plan, Ruleset: r.text });
    }
    return sendJSON(reply, await view(m));
  });
}
