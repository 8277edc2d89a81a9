/** /v1/kv/* and /v1/txn: keys, values, locks and atomic KV transactions. */
import type { FastifyInstance } from 'fastify';
import { canonicalize, isObject } from '../../api/index.js';
import { badRequest, MeshError, type AccessDenial } from '../../core/index.js';
import {
  checkDatacenter,
  flag,
  jsonBody,
  param,
  query,
  route,
  sendJSON,
  setQueryMeta,
  uintParam,
} from '../../httpkit/consul-http.js';
import type { TxnKVOp } from '../state/commands.js';
import * as Q from '../state/queries.js';
import type { TxnResult } from '../state/state-store.js';
import type { CatalogContext } from './context.js';
import { filters } from '../acl/filters.js';
import { authz, denied, requireNamed } from './authz.js';
import type { Authorizer } from '../../policy/index.js';
import { blockingRead, read } from './read.js';
import { propose } from './write.js';

export const MAX_VALUE_BYTES = 512 * 1024;
export const MAX_TXN_OPS = 128;

const TXN_VERBS = new Set([
  'set',
  'cas',
  'lock',
  'unlock',
  'get',
  'get-or-empty',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
]);
const WRITE_VERBS = new Set([
  'set',
  'cas',
  'lock',
  'unlock',
  'delete',
  'delete-tree',
  'delete-cas',
]);

/** The key from the URL, rejecting traversal tricks that Consul rejects. */
function kvKey(url: string): string {
  const path = url.split('?')[0]!;
  const raw = path.slice('/v1/kv/'.length);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw badRequest('Invalid key: bad percent-encoding', 'key');
  }
  if (/(^|\/)\.\.(\/|$)/.test(key))
    throw badRequest('Invalid key: path traversal is not allowed', 'key');
  return key;
}

export function kvRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  route(app, ['GET', 'PUT', 'DELETE'], '/v1/kv/*', async (req, reply) => {
    const q = query(req);
    const key = kvKey(req.url);
    const a = authz(ctx, req);
    if (req.method === 'GET') {
      const recurse = flag(q, 'recurse');
      if (flag(q, 'keys')) {
        const sep = param(q, 'separator') ?? '';
        return read(ctx, req, reply, () => Q.kvKeys(ctx.state, key, sep), {
          emptyStatus: 404,
          acl: filters.keys,
        });
      }
      if (!recurse && key === '') throw badRequest('Missing key name', 'key');
      // One key: refused outright, as Consul does; a prefix: narrowed to the readable keys.
      if (!recurse) requireNamed(a, 'key', key, 'read');
      if (flag(q, 'raw') && !recurse) {
        checkDatacenter(q, ctx.datacenter);
        const r = await blockingRead(ctx, req, reply, () => Q.kvGet(ctx.state, key, false));
        const e = r.value[0];
        if (!e) return reply.code(404).send();
        return reply
          .type('text/plain; charset=utf-8')
          .send(e.Value === null ? Buffer.alloc(0) : Buffer.from(e.Value, 'base64'));
      }
      return read(ctx, req, reply, () => Q.kvGet(ctx.state, key, recurse), {
        emptyStatus: 404,
        acl: filters.kv,
      });
    }
    if (req.method === 'PUT') {
      if (key === '') throw badRequest('Missing key name', 'key');
      requireNamed(a, 'key', key, 'write');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (body.length > MAX_VALUE_BYTES) {
        throw new MeshError(
          'MESH_ERR_TOO_LARGE',
          'user',
          `Value exceeds ${MAX_VALUE_BYTES} byte limit`,
          { status: 413 },
        );
      }
      const acquire = param(q, 'acquire');
      const release = param(q, 'release');
      if (acquire !== undefined && release !== undefined)
        throw badRequest('Conflicting flags: acquire and release', 'acquire');
      const cas = uintParam(q, 'cas');
      const out = await propose(ctx, {
        type: 'kv-set',
        key,
        value: body.length === 0 ? null : body.toString('base64'),
        flags: uintParam(q, 'flags') ?? 0,
        ...(cas !== undefined ? { cas } : {}),
        ...(acquire ? { acquire } : {}),
        ...(release ? { release } : {}),
        at: ctx.clock.now(),
      });
      return sendJSON(reply, out);
    }
    const recurse = flag(q, 'recurse');
    const cas = uintParam(q, 'cas');
    if (recurse && cas !== undefined) throw badRequest('Conflicting flags: cas and recurse', 'cas');
    if (!recurse && key === '') throw badRequest('Missing key name', 'key');
    if (recurse ? !a.writePrefix('key', key) : !a.allowed('key', key, 'write'))
      throw denied(a, 'key:write', key);
    return sendJSON(
      reply,
      await propose(ctx, {
        type: 'kv-delete',
        key,
        recurse,
        ...(cas !== undefined ? { cas } : {}),
      }),
    );
  });

  route(app, ['PUT'], '/v1/txn', async (req, reply) => {
    const a = authz(ctx, req);
    const raw = jsonBody(req);
    if (!Array.isArray(raw))
      throw badRequest('Request body must be a JSON list of operations', 'body');
    if (raw.length > MAX_TXN_OPS) {
      throw new MeshError(
        'MESH_ERR_TOO_LARGE',
        'user',
        `Transaction contains too many operations (${raw.length} > ${MAX_TXN_OPS})`,
        { status: 413 },
      );
    }
    const ops: TxnKVOp[] = raw.map((op, i) => txnOp(op, i));
    const refused = vetTxn(a, ops);
    if (refused.length > 0) {
      // Each refused operation is one ACL refusal: one audit line each.
      for (const r of refused) ctx.audit.denied(req, r.denial);
      setQueryMeta(reply, ctx.state.lastIndex);
      const Errors = refused.map(({ OpIndex, What }) => ({ OpIndex, What }));
      return sendJSON(reply.code(409), { Results: null, Errors });
    }
    const readOnly = ops.every((o) => !WRITE_VERBS.has(o.Verb));
    let result: TxnResult;
    if (readOnly) {
      // Read-only transactions are answered from memory without a log write, like Consul.
      result = ctx.state.readTxn(ops);
    } else {
      result = (await propose(ctx, { type: 'txn', ops, at: ctx.clock.now() })) as TxnResult;
    }
    if (result.Errors) reply.code(409);
    else if (!a.management && result.Results) {
      // get-tree answers only the keys this token may read.
      const kept = result.Results.filter((r) => a.allowed('key', r.KV.Key, 'read'));
      if (kept.length !== result.Results.length) {
        reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
        result = { ...result, Results: kept };
      }
    }
    setQueryMeta(reply, ctx.state.lastIndex);
    return sendJSON(reply, result);
  });
}

/**
 * The ACL check of every operation before any runs, as the direct endpoints decide: writes need
 * key:write (delete-tree on the whole subtree), single-key reads and checks need key:read.
 * Any refusal fails the whole transaction with Consul's per-operation error.
 */
function vetTxn(
  a: Authorizer,
  ops: TxnKVOp[],
): { OpIndex: number; What: string; denial: AccessDenial }[] {
  if (a.management) return [];
  const errors: { OpIndex: number; What: string; denial: AccessDenial }[] = [];
  ops.forEach((op, i) => {
    let ok: boolean;
    if (op.Verb === 'delete-tree') ok = a.writePrefix('key', op.Key);
    else if (WRITE_VERBS.has(op.Verb)) ok = a.allowed('key', op.Key, 'write');
    else if (op.Verb === 'get-tree') ok = true;
    else ok = a.allowed('key', op.Key, 'read');
    if (!ok) {
      const err = denied(a, `key:${WRITE_VERBS.has(op.Verb) ? 'write' : 'read'}`, op.Key);
      errors.push({ OpIndex: i, What: err.message, denial: err.denial });
    }
  });
  return errors;
}

function txnOp(raw: unknown, i: number): TxnKVOp {
  const path = `[${i}]`;
  if (!isObject(raw)) throw badRequest(`${path}: must be an object`, path);
  const top = canonicalize(raw, ['KV', 'Node', 'Service', 'Check']);
  if (!isObject(top.KV)) {
    const other = Object.keys(top)[0] ?? 'nothing';
    throw badRequest(`${path}: only KV operations are supported (got ${other})`, path);
  }
  const o = canonicalize(top.KV, ['Verb', 'Key', 'Value', 'Flags', 'Index', 'Session']);
  const verb = typeof o.Verb === 'string' ? o.Verb : '';
  if (!TXN_VERBS.has(verb))
    throw badRequest(
      `${path}.KV.Verb: unknown verb "${String(o.Verb).slice(0, 40)}"`,
      `${path}.KV.Verb`,
    );
  if (typeof o.Key !== 'string')
    throw badRequest(`${path}.KV.Key: must be a string`, `${path}.KV.Key`);
  let value: string | null = null;
  if (o.Value !== undefined && o.Value !== null) {
    if (typeof o.Value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.Value)) {
      throw badRequest(`${path}.KV.Value: must be base64`, `${path}.KV.Value`);
    }
    if (Buffer.byteLength(o.Value, 'base64') > MAX_VALUE_BYTES)
      throw badRequest(`${path}.KV.Value: exceeds ${MAX_VALUE_BYTES} bytes`, `${path}.KV.Value`);
    value = o.Value === '' ? null : o.Value;
  }
  const num = (k: string): number => {
    const v = o[k];
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw badRequest(`${path}.KV.${k}: must be a non-negative integer`, `${path}.KV.${k}`);
    return v;
  };
  if (
    (verb === 'lock' || verb === 'unlock' || verb === 'check-session') &&
    typeof o.Session !== 'string'
  ) {
    throw badRequest(`${path}.KV.Session: required for ${verb}`, `${path}.KV.Session`);
  }
  return {
    Verb: verb,
    Key: o.Key,
    Value: value,
    Flags: num('Flags'),
    Index: num('Index'),
    Session: typeof o.Session === 'string' ? o.Session : '',
  };
}
