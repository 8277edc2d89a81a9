/**
 * /v1/acl/*: bootstrap, tokens and policies (Consul's API), plus the two Trellis endpoints an
 * agent needs: its callers' resolved rules, and join tokens for onboarding new hosts.
 */
import type { FastifyInstance, HTTPMethods, RouteHandlerMethod } from 'fastify';
import { canonicalize, isObject, NAME_RE, str } from '../../api/index.js';
import { badRequest, MeshError, notFound, parseDuration } from '../../core/index.js';
import {
  jsonBody,
  param,
  query,
  requestToken,
  route,
  sendJSON,
} from '../../httpkit/consul-http.js';
import { policyBody, policyView, tokenBody, tokenView } from '../acl/bodies.js';
import { hashSecret } from '../acl/resolver.js';
import { GLOBAL_MANAGEMENT_ID, type AclTokenRow, type NewToken } from '../state/acl-table.js';
import { K } from '../state/index-table.js';
import { authz, requireGlobal } from './authz.js';
import type { CatalogContext } from './context.js';
import { propose } from './write.js';
import { blockingRead } from './read.js';
import type { QueryResult } from '../state/queries.js';

/** Join tokens live at most this long; the default is 15 minutes. */
const MAX_JOIN_TTL_MS = 24 * 3600_000;
const DEFAULT_JOIN_TTL_MS = 15 * 60_000;

/** An ACL read's result: it changes with any ACL write (Consul blocks these reads too). */
function aclResult<T>(ctx: CatalogContext, value: T): QueryResult<T> {
  return { value, index: Math.max(1, ctx.state.indexes.get(K.acl)), watch: { keys: [K.acl] } };
}

export function aclRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const id = (req: { params: unknown }): string => (req.params as { id: string }).id;
  /** Consul's /v1/acl/* answer 401 "ACL support disabled" while ACLs are off. */
  const aclRoute = (methods: HTTPMethods[], path: string, handler: RouteHandlerMethod): void =>
    route(app, methods, path, async function (req, reply) {
      if (!ctx.acl.enabled)
        throw new MeshError('MESH_ERR_ACL_DISABLED', 'user', 'ACL support disabled', {
          status: 401,
        });
      return handler.call(this, req, reply);
    });

  aclRoute(['PUT'], '/v1/acl/bootstrap', async (_req, reply) => {
    const secret = ctx.newId();
    const row = (await propose(ctx, {
      type: 'acl-bootstrap',
      token: newToken(ctx, secret, {
        Description: 'Bootstrap Token (Global Management)',
        Policies: [GLOBAL_MANAGEMENT_ID],
      }),
    })) as AclTokenRow;
    ctx.log.info({ accessor: row.AccessorID }, 'ACL bootstrapped');
    const view = tokenView(row, ctx.state.acl, secret);
    return sendJSON(reply, { ID: secret, ...view });
  });

  // ---- tokens ------------------------------------------------------------------------------

  aclRoute(['PUT'], '/v1/acl/token', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'write');
    const body = tokenBody(jsonBody(req), ctx.state.acl, ctx.clock.now());
    const secret = body.SecretID ?? ctx.newId();
    const row = (await propose(ctx, {
      type: 'acl-token-set',
      create: true,
      token: newToken(ctx, secret, body),
    })) as AclTokenRow;
    return sendJSON(reply, tokenView(row, ctx.state.acl, secret));
  });

  aclRoute(['GET'], '/v1/acl/token/self', async (req, reply) => {
    const token = ctx.acl.token(requestToken(req));
    if (!token) throw notFound('ACL not found');
    return sendJSON(reply, tokenView(token, ctx.state.acl));
  });

  aclRoute(['GET', 'PUT', 'DELETE'], '/v1/acl/token/:id', async (req, reply) => {
    const a = authz(ctx, req);
    const accessor = id(req);
    const existing = ctx.state.acl.tokens.get(accessor);
    if (req.method === 'GET') {
      requireGlobal(a, 'acl', 'read');
      const r = await blockingRead(ctx, req, reply, () =>
        aclResult(ctx, ctx.state.acl.tokens.get(accessor)),
      );
      if (!r.value) throw notFound('ACL not found');
      return sendJSON(reply, tokenView(r.value, ctx.state.acl));
    }
    requireGlobal(a, 'acl', 'write');
    if (req.method === 'DELETE') {
      return sendJSON(reply, await propose(ctx, { type: 'acl-token-delete', accessor }));
    }
    if (!existing) throw notFound(`Cannot find token to update: ${accessor}`);
    const body = tokenBody(jsonBody(req), ctx.state.acl, ctx.clock.now());
    if (body.AccessorID && body.AccessorID !== accessor)
      throw badRequest('AccessorID: does not match the AccessorID in the path', 'AccessorID');
    if (body.SecretID && hashSecret(body.SecretID) !== existing.SecretHash)
      throw badRequest('SecretID: cannot be changed; make a new token', 'SecretID');
    const row = (await propose(ctx, {
      type: 'acl-token-set',
      create: false,
      token: {
        ...existing,
        Description: body.Description,
        Policies: body.Policies,
        ServiceIdentities: body.ServiceIdentities,
        NodeIdentities: body.NodeIdentities,
        Local: body.Local,
        ...(body.ExpirationTime ? { ExpirationTime: body.ExpirationTime } : {}),
      },
    })) as AclTokenRow;
    return sendJSON(reply, tokenView(row, ctx.state.acl));
  });

  aclRoute(['PUT'], '/v1/acl/token/:id/clone', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'write');
    const from = ctx.state.acl.tokens.get(id(req));
    if (!from || from.Join) throw notFound('ACL not found');
    const raw = req.body && (req.body as Buffer).length ? jsonBody(req) : {};
    const desc = isObject(raw) ? str(canonicalize(raw, ['Description']), 'Description', '') : '';
    const secret = ctx.newId();
    const row = (await propose(ctx, {
      type: 'acl-token-set',
      create: true,
      token: newToken(ctx, secret, { ...from, Description: desc || from.Description }),
    })) as AclTokenRow;
    return sendJSON(reply, tokenView(row, ctx.state.acl, secret));
  });

  aclRoute(['GET'], '/v1/acl/tokens', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'read');
    const policy = param(query(req), 'policy');
    const { value: rows } = await blockingRead(ctx, req, reply, () =>
      aclResult(
        ctx,
        [...ctx.state.acl.tokens.values()]
          .filter((t) => !policy || t.Policies.includes(policy))
          .sort(
            (x, y) => x.CreateIndex - y.CreateIndex || x.AccessorID.localeCompare(y.AccessorID),
          ),
      ),
    );
    return sendJSON(
      reply,
      rows.map((t) => tokenView(t, ctx.state.acl)),
    );
  });

  // ---- policies ----------------------------------------------------------------------------

  aclRoute(['PUT'], '/v1/acl/policy', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'write');
    const body = policyBody(jsonBody(req));
    const row = await propose(ctx, {
      type: 'acl-policy-set',
      create: true,
      policy: { ...body, ID: body.ID ?? ctx.newId() },
    });
    return sendJSON(reply, policyView(row as never));
  });

  aclRoute(['GET'], '/v1/acl/policy/name/:name', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'read');
    const name = (req.params as { name: string }).name;
    const { value: p } = await blockingRead(ctx, req, reply, () =>
      aclResult(ctx, ctx.state.acl.policyByName(name)),
    );
    if (!p) throw notFound('ACL policy not found');
    return sendJSON(reply, policyView(p));
  });

  aclRoute(['GET', 'PUT', 'DELETE'], '/v1/acl/policy/:id', async (req, reply) => {
    const a = authz(ctx, req);
    const pid = id(req);
    const existing = ctx.state.acl.policies.get(pid);
    if (req.method === 'GET') {
      requireGlobal(a, 'acl', 'read');
      const { value: p } = await blockingRead(ctx, req, reply, () =>
        aclResult(ctx, ctx.state.acl.policies.get(pid)),
      );
      if (!p) throw notFound('ACL policy not found');
      return sendJSON(reply, policyView(p));
    }
    requireGlobal(a, 'acl', 'write');
    if (req.method === 'DELETE')
      return sendJSON(reply, await propose(ctx, { type: 'acl-policy-delete', id: pid }));
    if (!existing) throw notFound(`Cannot find policy ${pid}`);
    const body = policyBody(jsonBody(req));
    if (body.ID && body.ID !== pid) throw badRequest('ID: does not match the ID in the path', 'ID');
    const row = await propose(ctx, {
      type: 'acl-policy-set',
      create: false,
      policy: { ...body, ID: pid },
    });
    return sendJSON(reply, policyView(row as never));
  });

  aclRoute(['GET'], '/v1/acl/policies', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'read');
    const { value: rows } = await blockingRead(ctx, req, reply, () =>
      aclResult(
        ctx,
        [...ctx.state.acl.policies.values()].sort((x, y) => x.Name.localeCompare(y.Name)),
      ),
    );
    return sendJSON(
      reply,
      rows.map((p) => policyView(p, false)),
    );
  });

  // ---- Trellis: agents and onboarding -------------------------------------------------------

  /** The caller's own rules, so an agent can enforce its local API without a round trip each time. */
  route(app, ['GET'], '/v1/internal/trellis/acl/authorizer', async (req, reply) =>
    sendJSON(reply, ctx.acl.describe(requestToken(req))),
  );

  route(app, ['PUT'], '/v1/internal/trellis/join-token', async (req, reply) => {
    requireGlobal(authz(ctx, req), 'acl', 'write');
    const raw = req.body && (req.body as Buffer).length ? jsonBody(req) : {};
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['TTL', 'Node', 'Description']);
    const ttlText = str(o, 'TTL', '');
    const ttl = ttlText ? parseDuration(ttlText) : DEFAULT_JOIN_TTL_MS;
    if (ttl === undefined || ttl < 1000 || ttl > MAX_JOIN_TTL_MS)
      throw badRequest('TTL: must be a duration between 1s and 24h', 'TTL');
    const node = str(o, 'Node', '');
    if (node && !NAME_RE.test(node))
      throw badRequest(`Node: "${node}" is not a valid node name`, 'Node');
    const secret = ctx.newId();
    const expires = new Date(ctx.clock.now() + ttl).toISOString();
    const row = (await propose(ctx, {
      type: 'acl-token-set',
      create: true,
      token: newToken(ctx, secret, {
        Description: str(o, 'Description', '') || `join token${node ? ` for ${node}` : ''}`,
        ExpirationTime: expires,
        Join: { Node: node },
      }),
    })) as AclTokenRow;
    return sendJSON(reply, {
      AccessorID: row.AccessorID,
      SecretID: secret,
      ExpirationTime: expires,
      Node: node,
      CAFingerprint: ctx.ca.fingerprint(),
      ...(ctx.httpsAdvertise ? { JoinAddress: ctx.httpsAdvertise } : {}),
    });
  });
}

/** A new token row for `secret`; only the secret's hash is kept. */
export function newToken(
  ctx: CatalogContext,
  secret: string,
  fields: Partial<NewToken> & { AccessorID?: string },
): NewToken {
  return {
    AccessorID: fields.AccessorID ?? ctx.newId(),
    SecretHash: hashSecret(secret),
    Description: fields.Description ?? '',
    Policies: fields.Policies ?? [],
    ServiceIdentities: fields.ServiceIdentities ?? [],
    NodeIdentities: fields.NodeIdentities ?? [],
    Local: fields.Local ?? false,
    CreateTime: new Date(ctx.clock.now()).toISOString(),
    ...(fields.ExpirationTime ? { ExpirationTime: fields.ExpirationTime } : {}),
    ...(fields.Join ? { Join: fields.Join } : {}),
  };
}
