/**
 * /v1/query: prepared queries (create, list, read, update, delete, execute, explain).
 *
 * ACLs as Consul has them since 0.6.4: a query without a Name is reachable by anyone who knows
 * its ID and listed only to management tokens; a named query (or template) needs query:read /
 * query:write on its Name; a catch-all template (empty Name) needs write on every query name.
 * Execution reads the catalog with the query's captured token, else the caller's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  HIDDEN_TOKEN,
  normalizePreparedQuery,
  type PreparedQuery,
  type PreparedQueryExecuteResponse,
} from '../../api/index.js';
import { badRequest, isMeshError, notFound } from '../../core/index.js';
import {
  boolParam,
  checkDatacenter,
  jsonBody,
  param,
  query,
  route,
  sendJSON,
  setQueryMeta,
  uintParam,
} from '../../httpkit/consul-http.js';
import type { Authorizer } from '../../policy/index.js';
import { filters } from '../acl/filters.js';
import { hashSecret } from '../acl/resolver.js';
import { executeQuery, renderedQuery } from '../state/query-exec.js';
import { isTemplate, type QuerySpec, type StoredQuery } from '../state/query-table.js';
import { K } from '../state/index-table.js';
import { agentNode } from './agent-node.js';
import { authz, denied } from './authz.js';
import type { CatalogContext } from './context.js';
import { propose } from './write.js';

/** Unnamed static queries are guarded by their unguessable ID only. */
const openById = (q: Pick<StoredQuery, 'Name' | 'Template'>): boolean =>
  q.Name === '' && !isTemplate(q);

function mayRead(a: Authorizer, q: StoredQuery): boolean {
  return openById(q) || a.allowed('query', q.Name, 'read');
}

function requireWrite(a: Authorizer, q: Pick<StoredQuery, 'Name' | 'Template'>): void {
  if (openById(q)) return;
  const ok = q.Name === '' ? a.writePrefix('query', '') : a.allowed('query', q.Name, 'write');
  if (!ok) throw denied(a, 'query:write', q.Name);
}

export function toApiQuery(q: StoredQuery): PreparedQuery {
  return {
    ID: q.ID,
    Name: q.Name,
    Session: q.Session,
    Token: q.TokenHash ? HIDDEN_TOKEN : '',
    Template: q.Template,
    Service: q.Service,
    DNS: q.DNS,
    CreateIndex: q.CreateIndex,
    ModifyIndex: q.ModifyIndex,
  };
}

export function queryRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  /** The stored form of a body: the token checked and kept as its hash. */
  const specFrom = (req: FastifyRequest, id: string, existing?: StoredQuery): QuerySpec => {
    const body = normalizePreparedQuery(jsonBody(req));
    let tokenHash = '';
    if (body.Token === HIDDEN_TOKEN) {
      // What a read shows: keep the captured token.
      if (!existing) throw badRequest('Token: "<hidden>" names no token', 'Token');
      tokenHash = existing.TokenHash;
    } else if (body.Token !== '') {
      try {
        ctx.acl.resolve(body.Token);
      } catch (err) {
        if (isMeshError(err) && err.status === 403)
          throw badRequest('Token: no such ACL token', 'Token');
        throw err;
      }
      tokenHash = hashSecret(body.Token);
    }
    return {
      ID: id,
      Name: body.Name,
      Session: body.Session,
      TokenHash: tokenHash,
      Template: body.Template,
      Service: body.Service,
      DNS: body.DNS,
    };
  };

  const existing = (id: string): StoredQuery => {
    const q = ctx.state.queries.get(id);
    if (!q) throw notFound(`Query not found: '${id.slice(0, 80)}'`);
    return q;
  };

  route(app, ['POST', 'GET'], '/v1/query', async (req, reply) => {
    checkDatacenter(query(req), ctx.datacenter);
    const a = authz(ctx, req);
    if (req.method === 'POST') {
      const spec = specFrom(req, ctx.newId());
      requireWrite(a, spec);
      return sendJSON(reply, await propose(ctx, { type: 'query-set', query: spec, create: true }));
    }
    const all = ctx.state.queries.list();
    const visible = a.management ? all : all.filter((q) => !openById(q) && mayRead(a, q));
    if (visible.length !== all.length) reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
    setQueryMeta(reply, ctx.state.indexes.get(K.queries));
    return sendJSON(reply, visible.map(toApiQuery), query(req).pretty !== undefined);
  });

  route(app, ['GET', 'PUT', 'DELETE'], '/v1/query/:id', async (req, reply) => {
    checkDatacenter(query(req), ctx.datacenter);
    const id = (req.params as { id: string }).id;
    const a = authz(ctx, req);
    const q = existing(id);
    if (req.method === 'GET') {
      if (!mayRead(a, q)) throw denied(a, 'query:read', q.Name);
      setQueryMeta(reply, ctx.state.indexes.get(K.queries));
      return sendJSON(reply, [toApiQuery(q)], query(req).pretty !== undefined);
    }
    requireWrite(a, q);
    if (req.method === 'DELETE') {
      await propose(ctx, { type: 'query-delete', id });
      return reply.send();
    }
    const spec = specFrom(req, id, q);
    requireWrite(a, spec);
    await propose(ctx, { type: 'query-set', query: spec, create: false });
    return reply.send();
  });

  const lookup = (req: FastifyRequest): { stored: StoredQuery; rendered: StoredQuery } => {
    const asked = (req.params as { id: string }).id;
    const stored = ctx.state.queries.resolve(asked);
    if (!stored) throw notFound(`Query not found: '${asked.slice(0, 80)}'`);
    return { stored, rendered: renderedQuery(stored, asked) };
  };

  route(app, ['GET'], '/v1/query/:id/execute', async (req, reply) => {
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    const caller = authz(ctx, req);
    const { rendered } = lookup(req);
    const a = rendered.TokenHash ? ctx.acl.resolveHash(rendered.TokenHash) : caller;
    const near = nearNode(ctx, req, param(q, 'near') || rendered.Service.Near);
    const r = executeQuery(ctx.state, rendered, ctx.datacenter, {
      near,
      limit: uintParam(q, 'limit') ?? 0,
      connect: boolParam(q, 'connect'),
      random: ctx.random,
    });
    let nodes = r.value.nodes;
    if (!a.management) {
      const kept = filters.healthService(nodes, a);
      if (kept !== nodes) reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
      nodes = kept;
    }
    if (r.value.skipped.length > 0)
      reply.header('X-Trellis-Failover-Skipped', r.value.skipped.join(','));
    setQueryMeta(reply, r.index);
    const out: PreparedQueryExecuteResponse = {
      Service: rendered.Service.Service,
      Nodes: nodes,
      DNS: rendered.DNS,
      Datacenter: ctx.datacenter,
      Failovers: 0,
    };
    return sendJSON(reply, out, q.pretty !== undefined);
  });

  route(app, ['GET'], '/v1/query/:id/explain', async (req, reply: FastifyReply) => {
    checkDatacenter(query(req), ctx.datacenter);
    const a = authz(ctx, req);
    const { stored, rendered } = lookup(req);
    if (!mayRead(a, stored)) throw denied(a, 'query:read', stored.Name);
    setQueryMeta(reply, ctx.state.indexes.get(K.queries));
    return sendJSON(reply, { Query: toApiQuery(rendered) }, query(req).pretty !== undefined);
  });
}

/** `_agent` is the node the request came through; `_ip` the node with the caller's address. */
function nearNode(ctx: CatalogContext, req: FastifyRequest, near: string): string {
  if (near === '_agent') return agentNode(ctx, req);
  if (near !== '_ip') return near;
  const fwd = req.headers['x-forwarded-for'];
  const ip = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim() || req.ip;
  for (const n of ctx.state.catalog.nodes.values()) if (n.Address === ip) return n.Node;
  return '';
}
