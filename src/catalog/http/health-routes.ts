/** /v1/health/*: instances with their checks, and checks by service, node and state. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest } from '../../core/index.js';
import { boolParam, nodeMetaParam, params, query, route } from '../../httpkit/consul-http.js';
import * as Q from '../state/queries.js';
import type { CatalogContext } from './context.js';
import { filters } from '../acl/filters.js';
import { read } from './read.js';

const STATES = new Set(['any', 'passing', 'warning', 'critical']);

export function healthRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const serviceRead = (connect: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const q = query(req);
    const svc = (req.params as { name: string }).name;
    const tags = params(q, 'tag');
    const sq: Q.ServiceQuery = {
      connect,
      passing: boolParam(q, 'passing'),
      nodeMeta: nodeMetaParam(q),
      ...(tags.length ? { tags } : {}),
    };
    return read(ctx, req, reply, () => Q.healthService(ctx.state, svc, sq), {
      filterable: true,
      acl: filters.healthService,
    });
  };
  route(app, ['GET'], '/v1/health/service/:name', serviceRead(false));
  route(app, ['GET'], '/v1/health/connect/:name', serviceRead(true));

  route(app, ['GET'], '/v1/health/checks/:name', async (req, reply) => {
    const svc = (req.params as { name: string }).name;
    const meta = nodeMetaParam(query(req));
    return read(ctx, req, reply, () => Q.healthChecks(ctx.state, svc, meta), {
      filterable: true,
      acl: filters.checks,
    });
  });

  route(app, ['GET'], '/v1/health/node/:name', async (req, reply) => {
    const node = (req.params as { name: string }).name;
    return read(ctx, req, reply, () => Q.healthNode(ctx.state, node), {
      filterable: true,
      acl: filters.checks,
    });
  });

  route(app, ['GET'], '/v1/health/state/:state', async (req, reply) => {
    const state = (req.params as { state: string }).state;
    if (!STATES.has(state))
      throw badRequest(
        `Invalid check state "${state.slice(0, 40)}" (use any, passing, warning or critical)`,
        'state',
      );
    const meta = nodeMetaParam(query(req));
    return read(ctx, req, reply, () => Q.healthState(ctx.state, state as 'any', meta), {
      filterable: true,
      acl: filters.checks,
    });
  });
}
