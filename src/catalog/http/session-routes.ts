/** /v1/session/*: sessions for KV locks (create, destroy, info, node, list, renew). */
import type { FastifyInstance } from 'fastify';
import { canonicalize, isObject, SERF_CHECK_ID, type Session } from '../../api/index.js';
import { badRequest, notFound, parseDuration } from '../../core/index.js';
import { jsonBody, route, sendJSON } from '../../httpkit/consul-http.js';
import * as Q from '../state/queries.js';
import type { CatalogContext } from './context.js';
import { read } from './read.js';
import { propose } from './write.js';
import { filters } from '../acl/filters.js';
import { authz, requireNamed } from './authz.js';

export interface SessionLimits {
  minTTLms: number;
  maxTTLms: number;
}

const DEFAULT_LOCK_DELAY_NS = 15e9;

function sessionFromBody(
  ctx: CatalogContext,
  raw: unknown,
  limits: SessionLimits,
): Omit<Session, 'CreateIndex' | 'ModifyIndex'> {
  const o = raw === undefined ? {} : raw;
  if (!isObject(o)) throw badRequest('Request body must be a JSON object', 'body');
  const b = canonicalize(o, [
    'Name',
    'Node',
    'LockDelay',
    'Behavior',
    'TTL',
    'NodeChecks',
    'ServiceChecks',
    'Checks',
  ]);
  const strField = (k: string): string => {
    const v = b[k];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw badRequest(`${k}: must be a string`, k);
    return v;
  };
  const behavior = strField('Behavior') || 'release';
  if (behavior !== 'release' && behavior !== 'delete')
    throw badRequest('Behavior: must be "release" or "delete"', 'Behavior');
  const ttl = strField('TTL');
  if (ttl) {
    const ms = parseDuration(ttl);
    if (ms === undefined) throw badRequest(`TTL: "${ttl}" is not a duration`, 'TTL');
    if (ms !== 0 && (ms < limits.minTTLms || ms > limits.maxTTLms)) {
      throw badRequest(
        `TTL: must be between ${limits.minTTLms / 1000}s and ${limits.maxTTLms / 1000}s`,
        'TTL',
      );
    }
  }
  let lockDelay = DEFAULT_LOCK_DELAY_NS;
  if (typeof b.LockDelay === 'number')
    lockDelay = b.LockDelay < 1000 ? b.LockDelay * 1e9 : b.LockDelay; // as Consul: below 1000 means seconds, else ns
  else if (typeof b.LockDelay === 'string') {
    const ms = parseDuration(b.LockDelay);
    if (ms === undefined)
      throw badRequest(`LockDelay: "${b.LockDelay}" is not a duration`, 'LockDelay');
    lockDelay = ms * 1e6;
  } else if (b.LockDelay !== undefined && b.LockDelay !== null)
    throw badRequest('LockDelay: must be a duration', 'LockDelay');
  const list = (k: string): string[] | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw badRequest(`${k}: must be a list of strings`, k);
    return v as string[];
  };
  const nodeChecks = list('NodeChecks') ?? list('Checks') ?? [SERF_CHECK_ID];
  let serviceChecks: { ID: string }[] | null = null;
  if (b.ServiceChecks !== undefined && b.ServiceChecks !== null) {
    if (!Array.isArray(b.ServiceChecks))
      throw badRequest('ServiceChecks: must be a list of {ID}', 'ServiceChecks');
    serviceChecks = b.ServiceChecks.map((x, i) => {
      if (!isObject(x) || typeof x.ID !== 'string')
        throw badRequest(`ServiceChecks[${i}].ID: must be a string`, `ServiceChecks[${i}].ID`);
      return { ID: x.ID };
    });
  }
  return {
    ID: ctx.newId(),
    Name: strField('Name'),
    Node: strField('Node') || ctx.nodeName,
    LockDelay: lockDelay,
    Behavior: behavior,
    TTL: ttl,
    NodeChecks: nodeChecks,
    ServiceChecks: serviceChecks,
  };
}

export function sessionRoutes(
  app: FastifyInstance,
  ctx: CatalogContext,
  limits: SessionLimits,
): void {
  route(app, ['PUT'], '/v1/session/create', async (req, reply) => {
    const a = authz(ctx, req);
    const session = sessionFromBody(ctx, jsonBody(req), limits);
    requireNamed(a, 'session', session.Node, 'write');
    // The leader's timer starts when the session is applied (catalog/session-timers.ts).
    const out = await propose(ctx, { type: 'session-create', session });
    return sendJSON(reply, out);
  });

  route(app, ['PUT'], '/v1/session/destroy/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const a = authz(ctx, req);
    const existing = ctx.state.sessions.get(id);
    if (existing) requireNamed(a, 'session', existing.Node, 'write');
    await propose(ctx, { type: 'session-destroy', id, at: ctx.clock.now() });
    return sendJSON(reply, true);
  });

  route(app, ['PUT'], '/v1/session/renew/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const s = ctx.state.sessions.get(id);
    if (!s) throw notFound(`Session id '${id}' not found`);
    requireNamed(authz(ctx, req), 'session', s.Node, 'write');
    if (s.TTL) await ctx.sessions.renew(id, s.TTL);
    return sendJSON(reply, [ctx.state.sessions.get(id) ?? s]);
  });

  route(app, ['GET'], '/v1/session/info/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    return read(ctx, req, reply, () => Q.sessionInfo(ctx.state, id), { acl: filters.sessions });
  });
  route(app, ['GET'], '/v1/session/node/:node', async (req, reply) => {
    const node = (req.params as { node: string }).node;
    return read(ctx, req, reply, () => Q.sessionsOfNode(ctx.state, node), {
      filterable: true,
      acl: filters.sessions,
    });
  });
  route(app, ['GET'], '/v1/session/list', async (req, reply) =>
    read(ctx, req, reply, () => Q.sessionList(ctx.state), {
      filterable: true,
      acl: filters.sessions,
    }),
  );
}
