/**
 * One function for every read route: parse blocking parameters, wait if asked, set Consul's
 * query headers, apply `?filter`, and send JSON.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { compileFilter } from '../../api/filter.js';
import {
  blockingParams,
  checkDatacenter,
  param,
  query,
  setQueryMeta,
} from '../../httpkit/consul-http.js';
import { blockingQuery } from '../state/blocking.js';
import type { QueryResult } from '../state/queries.js';
import type { CatalogContext } from './context.js';
import type { CachedBody } from './response-cache.js';
import type { Authorizer } from '../../policy/index.js';
import { authz } from './authz.js';

export interface ReadOptions<T = unknown> {
  /** Apply ?filter to the elements of an array result (or values of an object result). */
  filterable?: boolean;
  /** Filter this field's elements instead of the top-level value. */
  filterField?: string;
  /** Status to answer when the result is empty/null (KV answers 404). */
  emptyStatus?: number;
  /**
   * Narrows the result to what the token may read (see acl/filters.ts); returns its input when
   * nothing was dropped. Reads without one need no permission (status, datacenters).
   */
  acl?: (value: T, a: Authorizer) => T;
}

export async function read<T>(
  ctx: CatalogContext,
  req: FastifyRequest,
  reply: FastifyReply,
  run: () => QueryResult<T>,
  opts: ReadOptions<T> = {},
): Promise<FastifyReply> {
  const q = query(req);
  checkDatacenter(q, ctx.datacenter);
  // Resolve first: an unknown token is refused at once rather than after a blocking wait.
  const a = authz(ctx, req);
  const filterText = opts.filterable ? param(q, 'filter') : undefined;
  const predicate = filterText ? compileFilter(filterText) : undefined;
  const key = cacheKey(req.url);
  const cachedRun = (): QueryResult<T> => ctx.responses.result(key, ctx.state.lastIndex, run);
  const r = await blockingRead(ctx, req, reply, cachedRun);
  if (opts.acl && !a.management) {
    const visible = opts.acl(r.value, a);
    if (visible !== r.value) {
      // A narrowed answer is this token's alone: shaped fresh, never cached.
      reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
      return sendCached(reply, shape(visible, predicate, opts, q.pretty !== undefined));
    }
  }
  const hit = ctx.responses.body(key, r);
  if (hit) return sendCached(reply, hit);
  const answer = shape(r.value, predicate, opts, q.pretty !== undefined);
  ctx.responses.setBody(key, r, answer);
  return sendCached(reply, answer);
}

/**
 * The blocking part of a read, for routes that shape their own answer (`?raw` values, ACL
 * listings): honours `?index`/`?wait` (and `?stale`/`?consistent`), gives up when the client
 * goes away, and sets Consul's query headers. Every read that answers an X-Consul-Index goes
 * through here, so a client blocking on that index waits instead of polling in a tight loop.
 */
export async function blockingRead<T>(
  ctx: CatalogContext,
  req: FastifyRequest,
  reply: FastifyReply,
  run: () => QueryResult<T>,
): Promise<QueryResult<T>> {
  const bp = blockingParams(query(req));
  const ac = new AbortController();
  const onClose = (): void => ac.abort();
  reply.raw.once('close', onClose);
  let r: QueryResult<T>;
  try {
    r = await blockingQuery(ctx.state.hub, run, {
      minIndex: bp.index,
      waitMs: bp.waitMs,
      clock: ctx.clock,
      random: ctx.random,
      signal: ac.signal,
    });
  } finally {
    reply.raw.off('close', onClose);
  }
  setQueryMeta(reply, r.index, bp.consistency);
  return r;
}

function sendCached(reply: FastifyReply, a: CachedBody): FastifyReply {
  reply.code(a.status);
  if (a.body === null) return reply.send();
  reply.header('content-type', 'application/json');
  return reply.send(a.body);
}

/** The request's path and parameters, less the ones that only say how long to wait. */
function cacheKey(url: string): string {
  const i = url.indexOf('?');
  if (i < 0) return url;
  const params = url
    .slice(i + 1)
    .split('&')
    .filter((p) => !/^(index|wait|stale|consistent|cached)(=|$)/.test(p));
  return `${url.slice(0, i)}?${params.join('&')}`;
}

/** Applies ?filter and the empty-result status, and serializes. */
function shape(
  raw: unknown,
  predicate: ((item: unknown) => boolean) | undefined,
  opts: Pick<ReadOptions, 'filterField' | 'emptyStatus'>,
  pretty: boolean,
): CachedBody {
  let value: unknown = raw;
  if (predicate && opts.filterField && value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const list = obj[opts.filterField];
    if (Array.isArray(list)) value = { ...obj, [opts.filterField]: list.filter(predicate) };
  } else if (predicate) {
    if (Array.isArray(value)) value = value.filter(predicate);
    else if (value && typeof value === 'object') {
      value = Object.fromEntries(Object.entries(value).filter(([, v]) => predicate(v)));
    }
  }
  if (opts.emptyStatus && (value === null || (Array.isArray(value) && value.length === 0))) {
    return { status: opts.emptyStatus, body: null };
  }
  return {
    status: 200,
    body: Buffer.from(pretty ? JSON.stringify(value, null, 4) : JSON.stringify(value)),
  };
}
