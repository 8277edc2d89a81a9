/**
 * Fastify plumbing shared by the catalog's and the agent's Consul-compatible APIs:
 *  - bodies arrive as raw Buffers (KV stores bytes; JSON is decoded per route so errors can
 *    name the field),
 *  - errors leave as Consul does them: a status code and a short text/plain message,
 *  - query parameters parse the Consul way (presence flags, Go durations, repeatable tags),
 *  - each path answers 405 for methods it does not support.
 */
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HTTPMethods,
  RouteHandlerMethod,
} from 'fastify';
import {
  AccessDeniedError,
  badRequest,
  isMeshError,
  MeshError,
  parseDuration,
  describeError,
} from '../core/index.js';
import { NO_AUDIT, type AuditLog } from './audit.js';

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_WAIT_MS = 10 * 60_000;
export const DEFAULT_WAIT_MS = 5 * 60_000;

/**
 * Server options for every Consul-compatible API. A client gets 30s to send its request (so a
 * slow sender cannot hold a connection forever), but no limit on waiting for the answer, since
 * blocking queries legitimately wait up to 10 minutes. Path parameters may be as long as a name
 * can be.
 */
export const CONSUL_FASTIFY_OPTIONS = {
  bodyLimit: MAX_BODY_BYTES,
  logger: false,
  forceCloseConnections: true,
  return503OnClosing: false,
  requestTimeout: 30_000,
  routerOptions: { maxParamLength: 512 },
} as const;

export type Query = Record<string, string | string[] | undefined>;

export function query(req: FastifyRequest): Query {
  return req.query as Query;
}

/** Last value of a parameter that may be repeated. */
export function param(q: Query, k: string): string | undefined {
  const v = q[k];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function params(q: Query, k: string): string[] {
  const v = q[k];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * The ACL secret a request carries, in Consul's order: `?token`, then `X-Consul-Token`, then
 * `Authorization: Bearer`. '' when there is none.
 */
export function requestToken(req: FastifyRequest): string {
  const q = param(query(req), 'token');
  if (q) return q;
  const h = req.headers['x-consul-token'];
  const header = Array.isArray(h) ? h[0] : h;
  if (header) return header.trim();
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1]!;
  }
  return '';
}

/** Presence flags (`?recurse`, `?stale=`, `?keys=true`): on when present. */
export function flag(q: Query, k: string): boolean {
  return q[k] !== undefined;
}

/** Boolean parameters (`?passing`, `?passing=1`, `?passing=true`, `?passing=false`). */
export function boolParam(q: Query, k: string): boolean {
  const v = param(q, k);
  if (v === undefined) return false;
  if (v === '' || v === '1' || v.toLowerCase() === 'true') return true;
  if (v === '0' || v.toLowerCase() === 'false') return false;
  throw badRequest(`Invalid value for "${k}": "${v}" (expected true or false)`, k);
}

export function uintParam(q: Query, k: string): number | undefined {
  const v = param(q, k);
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw badRequest(
      `Invalid ${k} parameter: "${v.slice(0, 40)}" is not a non-negative integer`,
      k,
    );
  }
  return Number(v);
}

export interface BlockingParams {
  index: number;
  waitMs: number;
  consistency: 'leader' | 'stale' | 'consistent';
}

export function blockingParams(q: Query): BlockingParams {
  const index = uintParam(q, 'index') ?? 0;
  const w = param(q, 'wait');
  let waitMs = DEFAULT_WAIT_MS;
  if (w !== undefined && w !== '') {
    const parsed = parseDuration(w);
    if (parsed === undefined || parsed < 0)
      throw badRequest(
        `Invalid wait time: "${w.slice(0, 40)}" (use a duration like "30s" or "5m")`,
        'wait',
      );
    waitMs = Math.min(parsed, MAX_WAIT_MS);
  }
  const stale = flag(q, 'stale');
  const consistent = flag(q, 'consistent');
  if (stale && consistent)
    throw badRequest('Cannot specify ?stale with ?consistent, conflicting semantics.', 'stale');
  return { index, waitMs, consistency: stale ? 'stale' : consistent ? 'consistent' : 'leader' };
}

/** Trellis serves one datacenter: `?dc=` naming another has nowhere to go (Consul: same text). */
export function checkDatacenter(q: Query, ours: string): void {
  const dc = param(q, 'dc');
  if (dc && dc !== ours) {
    throw new MeshError('MESH_ERR_NO_DATACENTER', 'user', `No path to datacenter "${dc}"`, {
      status: 400,
      field: 'dc',
    });
  }
}

/** `node-meta=k:v` (repeatable) as a map, or undefined when absent. */
export function nodeMetaParam(q: Query): Record<string, string> | undefined {
  const list = params(q, 'node-meta');
  if (list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf(':');
    if (i <= 0)
      throw badRequest(`Invalid node-meta "${kv.slice(0, 60)}": expected key:value`, 'node-meta');
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** Decodes a JSON body; an empty body gives `undefined`. */
export function jsonBody(req: FastifyRequest): unknown {
  const body = req.body;
  if (body === undefined || body === null) return undefined;
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`Request decode failed: ${describeError(err)}`, 'body');
  }
}

/** Sets the headers every Consul response to a read carries. */
export function setQueryMeta(reply: FastifyReply, index: number, consistency = 'leader'): void {
  reply.header('X-Consul-Index', String(Math.max(1, index)));
  reply.header('X-Consul-KnownLeader', 'true');
  reply.header('X-Consul-LastContact', '0');
  reply.header('X-Consul-Effective-Consistency', consistency);
}

export function sendJSON(reply: FastifyReply, value: unknown, pretty = false): FastifyReply {
  // Exactly "application/json", as Consul sends it; a Buffer keeps fastify from adding a charset.
  reply.header('content-type', 'application/json');
  return reply.send(Buffer.from(pretty ? JSON.stringify(value, null, 4) : JSON.stringify(value)));
}

const ALL_METHODS: HTTPMethods[] = ['GET', 'PUT', 'POST', 'DELETE'];

/** Registers `handler` for `methods` on `path` and a 405 answer for the other methods. */
export function route(
  app: FastifyInstance,
  methods: HTTPMethods[],
  path: string,
  handler: RouteHandlerMethod,
): void {
  app.route({ method: methods, url: path, handler });
  const others = ALL_METHODS.filter((m) => !methods.includes(m));
  if (others.length === 0) return;
  app.route({
    method: others,
    url: path,
    handler: async (req, reply) => {
      reply.code(405).type('text/plain; charset=utf-8');
      return `method ${req.method} not allowed`;
    },
  });
}

export interface HttpLogger {
  error(obj: object, msg: string): void;
}

/** Body parsing and error answers common to every Consul-compatible API. */
export function installConsulHttp(
  app: FastifyInstance,
  log?: HttpLogger,
  /** The ACL default policy to announce in X-Consul-Default-ACL-Policy. */
  aclDefaultPolicy: () => string = () => 'allow',
  /** Every ACL refusal this API answers writes one line here. */
  audit: AuditLog = NO_AUDIT,
): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES },
    (_req, body, done) => done(null, body),
  );
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Consul-Default-ACL-Policy', aclDefaultPolicy());
    return payload;
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`Unsupported path: ${req.method} ${req.url.split('?')[0]}`);
  });
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AccessDeniedError) audit.denied(req, err.denial);
    if (isMeshError(err)) {
      reply.code(err.status).type('text/plain; charset=utf-8').send(err.message);
      return;
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      reply
        .code(413)
        .type('text/plain; charset=utf-8')
        .send(`Request body too large (limit ${MAX_BODY_BYTES} bytes)`);
      return;
    }
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      reply
        .code(e.statusCode)
        .type('text/plain; charset=utf-8')
        .send(e.message ?? 'Bad request');
      return;
    }
    log?.error({ err }, 'request failed');
    reply
      .code(500)
      .type('text/plain; charset=utf-8')
      .send(`Internal error: ${describeError(err)}`);
  });
}
