/**
 * /v1/connect/intentions: Consul's intention endpoints, as views over service-intentions config
 * entries (one entry per destination, each source one intention).
 *
 *   GET    /v1/connect/intentions[?filter]            [Intention] in evaluation order (blocking)
 *   POST   /v1/connect/intentions                     {ID}: create (deprecated; 409 if the pair exists)
 *   GET    /v1/connect/intentions/:id                 by legacy ID (blocking)
 *   PUT    /v1/connect/intentions/:id                 {ID}: replace (may change the pair)
 *   DELETE /v1/connect/intentions/:id                 true
 *   GET    /v1/connect/intentions/exact?source=&destination=   Intention or 404 (blocking)
 *   PUT    /v1/connect/intentions/exact?...           true: upsert one source of the entry
 *   DELETE /v1/connect/intentions/exact?...           true
 *   GET    /v1/connect/intentions/check?source=&destination=[&path=&method=&header=N:V...]
 *          {Allowed, Reason, Intention, Permission, Default} (not blocking)
 *   GET    /v1/connect/intentions/match?by=source|destination&name=X[&name=Y]
 *          {X: [Intention...]} in evaluation order (blocking)
 *   GET    /v1/internal/trellis/connect/intention-state   {DefaultAllow, Index, Intentions}
 *          (blocking): what an agent's intention cache holds.
 *
 * ACL: intention access is decided on the destination. Reads need intention read (lists drop
 * what the token may not read), writes intention write, the check intention read.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canonicalize, isObject, NAME_RE, type Intention } from '../../api/index.js';
import { badRequest, isMeshError, MeshError, notFound } from '../../core/index.js';
import { normalizeConfigEntry, type SourceIntention } from '../../config/config-entries.js';
import {
  checkDatacenter,
  jsonBody,
  param,
  params,
  query,
  route,
  sendJSON,
  setQueryMeta,
  type Query,
} from '../../httpkit/consul-http.js';
import { decide, type Authorizer, type Request } from '../../policy/index.js';
import * as Q from '../state/config-queries.js';
import type { IntentionRow } from '../state/config-table.js';
import { K } from '../state/index-table.js';
import { authz, denied, requireIntention } from './authz.js';
import type { CatalogContext } from './context.js';
import { read } from './read.js';
import { propose } from './write.js';

const INTENTION_FIELDS = [
  'ID',
  'Description',
  'SourceNS',
  'SourceName',
  'DestinationNS',
  'DestinationName',
  'SourcePartition',
  'DestinationPartition',
  'SourcePeer',
  'SourceSamenessGroup',
  'SourceType',
  'Action',
  'Permissions',
  'Meta',
  'Precedence',
  'CreatedAt',
  'UpdatedAt',
  'Hash',
  'CreateIndex',
  'ModifyIndex',
];

const NAME_RULE =
  "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters";

/**
 * An intention name as Consul spells it: `name`, `ns/name` or `partition/ns/name`, or `*` (a
 * whole-value wildcard only). Trellis has only the default namespace and partition.
 */
export function intentionName(raw: unknown, what: string, wildcard = true): string {
  if (raw === undefined || raw === null || raw === '')
    throw badRequest(`${what}: missing (required)`, what);
  if (typeof raw !== 'string') throw badRequest(`${what}: must be a string`, what);
  const parts = raw.split('/');
  const name = parts[parts.length - 1]!;
  if (parts.length > 3 || parts.slice(0, -1).some((p) => p !== 'default' && p !== ''))
    throw badRequest(
      `${what}: ${JSON.stringify(raw.slice(0, 64))}: only the "default" namespace and partition exist (namespaces and partitions are Consul Enterprise features)`,
      what,
    );
  if (name === '*') {
    if (!wildcard) throw badRequest(`${what}: must name one service, not "*"`, what);
    return name;
  }
  if (!NAME_RE.test(name))
    throw badRequest(
      `${what}: ${JSON.stringify(name.slice(0, 64))} is not a valid service name (${NAME_RULE}, or "*" alone)`,
      what,
    );
  return name;
}

/** A namespace or partition field: empty or "default". */
function defaultOnly(o: Record<string, unknown>, k: string): void {
  const v = o[k];
  if (v === undefined || v === null || v === '' || v === 'default') return;
  throw badRequest(
    `${k}: ${JSON.stringify(String(v).slice(0, 64))} is not supported; only "default" exists`,
    k,
  );
}

interface IntentionInput {
  id: string;
  source: string;
  destination: string;
  rule: SourceIntention;
}

/**
 * An Intention body: the names (unless the URL gives them), and the rule checked exactly as a
 * source of a service-intentions entry is, so the two APIs accept the same rules.
 */
function intentionBody(
  raw: unknown,
  opts: { names?: { source: string; destination: string }; meta: boolean },
): IntentionInput {
  if (raw === undefined) throw badRequest('Request body is empty: send an intention', 'body');
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const o = canonicalize(raw, INTENTION_FIELDS);
  for (const k of ['SourceNS', 'DestinationNS', 'SourcePartition', 'DestinationPartition'])
    defaultOnly(o, k);
  for (const k of ['SourcePeer', 'SourceSamenessGroup']) {
    if (o[k] !== undefined && o[k] !== null && o[k] !== '')
      throw badRequest(`${k}: peering and sameness groups are not supported by Trellis`, k);
  }
  if (o.SourceType !== undefined && o.SourceType !== null && o.SourceType !== '') {
    if (o.SourceType !== 'consul')
      throw badRequest(
        `SourceType: must be "consul", not ${JSON.stringify(String(o.SourceType).slice(0, 32))}`,
        'SourceType',
      );
  }
  const id = o.ID === undefined || o.ID === null ? '' : o.ID;
  if (typeof id !== 'string') throw badRequest('ID: must be a string', 'ID');
  const source = opts.names?.source ?? intentionName(o.SourceName, 'SourceName');
  const destination =
    opts.names?.destination ?? intentionName(o.DestinationName, 'DestinationName');
  const meta = o.Meta;
  const hasMeta = isObject(meta) && Object.keys(meta).length > 0;
  if (hasMeta && !opts.meta)
    throw badRequest(
      'Meta: cannot be set through this endpoint; set it on the service-intentions config entry',
      'Meta',
    );
  if (meta !== undefined && meta !== null && !isObject(meta))
    throw badRequest('Meta: must be an object of strings', 'Meta');
  const src: Record<string, unknown> = { Name: source };
  for (const k of ['Action', 'Permissions', 'Description'])
    if (o[k] !== undefined && o[k] !== null) src[k] = o[k];
  if (hasMeta) src.LegacyMeta = meta;
  let rule: SourceIntention;
  try {
    const entry = normalizeConfigEntry({
      Kind: 'service-intentions',
      Name: destination,
      Sources: [src],
    });
    rule = (entry as { Sources: SourceIntention[] }).Sources[0]!;
  } catch (err) {
    throw isMeshError(err) ? asIntentionError(err) : err;
  }
  return { id, source, destination, rule };
}

/** A config-entry error as the intention API names its fields ("Sources[0].Action" -> "Action"). */
function asIntentionError(err: MeshError): MeshError {
  const message = err.message.replace(/^Sources\[0\](\.|: )/, '').replace(/^LegacyMeta/, 'Meta');
  const field = err.field?.replace(/^Sources\[0\]\.?/, '').replace(/^LegacyMeta/, 'Meta');
  return new MeshError(err.code, err.kind, message, {
    status: err.status,
    field: field || undefined,
  });
}

function pairParams(q: Query): { source: string; destination: string } {
  return {
    source: intentionName(param(q, 'source'), 'source'),
    destination: intentionName(param(q, 'destination'), 'destination'),
  };
}

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Control characters other than tab: never part of a path or header value on the wire. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}
const MAX_CHECK_HEADERS = 64;

/**
 * The HTTP request an L7 check decides, from `path`, `method` and repeated `header=Name:Value`;
 * undefined (an L4 check) when none is given. The query and fragment are not part of the path
 * rules match, so they are cut off here as a proxy would.
 */
function checkRequest(q: Query): Request['http'] {
  const rawPath = param(q, 'path');
  const rawMethod = param(q, 'method');
  const headerList = params(q, 'header');
  if (rawPath === undefined && rawMethod === undefined && headerList.length === 0) return undefined;
  const path = (rawPath ?? '/').replace(/[?#].*$/s, '');
  if (!path.startsWith('/')) throw badRequest(`path: must start with "/"`, 'path');
  if (hasControl(path)) throw badRequest('path: must not contain control characters', 'path');
  const method = (rawMethod ?? 'GET').toUpperCase();
  if (!HEADER_NAME_RE.test(method))
    throw badRequest(
      `method: ${JSON.stringify(method.slice(0, 32))} is not an HTTP method`,
      'method',
    );
  if (headerList.length > MAX_CHECK_HEADERS)
    throw badRequest(`header: at most ${MAX_CHECK_HEADERS} headers`, 'header');
  const headers: Record<string, string> = {};
  for (const h of headerList) {
    const i = h.indexOf(':');
    const name = i < 0 ? '' : h.slice(0, i).trim().toLowerCase();
    if (!HEADER_NAME_RE.test(name))
      throw badRequest(
        `header: ${JSON.stringify(h.slice(0, 64))}: expected Name:Value with a valid header name`,
        'header',
      );
    const value = h.slice(i + 1).trim();
    if (hasControl(value))
      throw badRequest(
        `header: the value of "${name}" must not contain control characters`,
        'header',
      );
    // A repeated header is one comma-joined value, as HTTP combines them.
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  return { path, method, headers };
}

const intentionsReadable = (list: Intention[], a: Authorizer): Intention[] => {
  const out = list.filter((i) => a.intention(i.DestinationName, 'read'));
  return out.length === list.length ? list : out;
};

export function intentionRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const idParam = (req: FastifyRequest): string => (req.params as { id: string }).id;
  const now = (): number => ctx.clock.now();
  const writeQuery = (req: FastifyRequest): Query => {
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    return q;
  };

  route(app, ['GET', 'POST'], '/v1/connect/intentions', async (req, reply) => {
    if (req.method === 'GET')
      return read(ctx, req, reply, () => Q.intentionList(ctx.state), {
        filterable: true,
        acl: intentionsReadable,
      });
    writeQuery(req);
    const a = authz(ctx, req);
    const b = intentionBody(jsonBody(req), { meta: true });
    if (b.id) throw badRequest('ID: must be empty when creating an intention', 'ID');
    requireIntention(a, b.destination, 'write');
    const id = ctx.newId();
    await propose(ctx, {
      type: 'config-intention-set',
      destination: b.destination,
      source: { ...b.rule, LegacyID: id },
      create: true,
      at: now(),
    });
    return sendJSON(reply, { ID: id });
  });

  route(app, ['GET', 'PUT', 'DELETE'], '/v1/connect/intentions/exact', async (req, reply) => {
    const q = query(req);
    const a = authz(ctx, req);
    const { source, destination } = pairParams(q);
    if (req.method === 'GET') {
      requireIntention(a, destination, 'read');
      return read(ctx, req, reply, () => Q.intentionExact(ctx.state, source, destination), {
        emptyStatus: 404,
      });
    }
    checkDatacenter(q, ctx.datacenter);
    requireIntention(a, destination, 'write');
    if (req.method === 'DELETE') {
      await propose(ctx, { type: 'config-intention-delete', source, destination });
      return sendJSON(reply, true);
    }
    const b = intentionBody(jsonBody(req), { names: { source, destination }, meta: false });
    if (b.id) throw badRequest('ID: cannot be set through this endpoint', 'ID');
    await propose(ctx, {
      type: 'config-intention-set',
      destination,
      source: b.rule,
      create: false,
      at: now(),
    });
    return sendJSON(reply, true);
  });

  route(app, ['GET'], '/v1/connect/intentions/check', async (req, reply) => {
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    const a = authz(ctx, req);
    const source = intentionName(param(q, 'source'), 'source', false);
    const destination = intentionName(param(q, 'destination'), 'destination', false);
    const sourceType = param(q, 'source-type');
    if (sourceType && sourceType !== 'consul')
      throw badRequest(`source-type: must be "consul"`, 'source-type');
    requireIntention(a, destination, 'read');
    const http = checkRequest(q);
    const d = decide(
      ctx.state.config.candidates(source, destination),
      { source, destination, ...(http ? { http } : {}) },
      ctx.acl.defaultPolicy === 'allow',
    );
    // decide() hands back the rule it was given, which is the table's row.
    const row = d.intention as IntentionRow | undefined;
    setQueryMeta(reply, ctx.state.indexes.get(K.intentions));
    return sendJSON(
      reply,
      {
        Allowed: d.allowed,
        Reason: d.reason,
        Intention: row ? Q.rowView(row) : null,
        Permission: d.permission === undefined ? null : d.permission + 1,
        // The default policy decided: nothing matched, or (L7) none of the permissions did.
        Default: !row || (http !== undefined && !row.Action && d.permission === undefined),
      },
      q.pretty !== undefined,
    );
  });

  route(app, ['GET'], '/v1/connect/intentions/match', async (req, reply) => {
    const q = query(req);
    const by = param(q, 'by');
    if (by !== 'source' && by !== 'destination')
      throw badRequest('by: must be "source" or "destination"', 'by');
    const names = params(q, 'name');
    if (names.length === 0) throw badRequest('name: at least one name is required', 'name');
    if (names.length > 64) throw badRequest('name: at most 64 names', 'name');
    const list = names.map((n) => intentionName(n, 'name'));
    return read(ctx, req, reply, () => Q.intentionMatch(ctx.state, by, list), {
      acl: (value, a) => {
        let changed = false;
        const out: Record<string, Intention[]> = {};
        for (const [k, v] of Object.entries(value)) {
          out[k] = intentionsReadable(v, a);
          if (out[k] !== v) changed = true;
        }
        return changed ? out : value;
      },
    });
  });

  route(app, ['GET', 'PUT', 'DELETE'], '/v1/connect/intentions/:id', async (req, reply) => {
    const id = idParam(req);
    const a = authz(ctx, req);
    const current = ctx.state.config.intentionById(id);
    if (req.method === 'GET') {
      if (current) requireIntention(a, current.DestinationName, 'read');
      return read(ctx, req, reply, () => Q.intentionById(ctx.state, id), {
        emptyStatus: 404,
        // The intention may have moved to a destination this token cannot read while we waited.
        acl: (v, auth) => (v && !auth.intention(v.DestinationName, 'read') ? null : v),
      });
    }
    writeQuery(req);
    if (!current) throw notFound(`Intention with ID "${id}" not found`);
    requireIntention(a, current.DestinationName, 'write');
    if (req.method === 'DELETE') {
      await propose(ctx, { type: 'config-intention-delete', id });
      return sendJSON(reply, true);
    }
    const b = intentionBody(jsonBody(req), { meta: true });
    if (b.id && b.id !== id) throw badRequest('ID: does not match the ID in the path', 'ID');
    requireIntention(a, b.destination, 'write');
    await propose(ctx, {
      type: 'config-intention-set',
      destination: b.destination,
      source: b.rule,
      create: false,
      replaceId: id,
      at: now(),
    });
    return sendJSON(reply, { ID: id });
  });

  /**
   * Everything an agent needs to authorize connections itself. A partial list could hide a
   * deny behind a wildcard allow, so the token must be able to read every intention: with any
   * hidden, the answer is 403 rather than a list that would decide wrongly.
   */
  route(app, ['GET'], '/v1/internal/trellis/connect/intention-state', async (req, reply) => {
    const a = authz(ctx, req);
    requireIntention(a, '*', 'read');
    return read(
      ctx,
      req,
      reply,
      () => Q.intentionState(ctx.state, ctx.acl.defaultPolicy === 'allow'),
      {
        acl: (value, auth) => {
          const hidden = value.Intentions.find((i) => !auth.intention(i.DestinationName, 'read'));
          if (hidden) throw denied(auth, 'intention:read', hidden.DestinationName);
          return value;
        },
      },
    );
  });
}
