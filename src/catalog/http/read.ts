/**
 * One function for every read route: parse blocking parameters, wait if asked, set Consul's
 * query headers, apply `?filter`, and send JSON.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { compileFilter } from '../../api/filter.js';
import { blockingParams, param, query, sendJSON, setQueryMeta } from '../../httpkit/consul-http.js';
import { blockingQuery } from '../state/blocking.js';
import type { QueryResult } from '../state/queries.js';
import type { CatalogContext } from './context.js';

export interface ReadOptions {
  /** Apply ?filter to the elements of an array result (or values of an object result). */
  filterable?: boolean;
  /** Filter this field's elements instead of the top-level value. */
  filterField?: string;
  /** Status to answer when the result is empty/null (KV answers 404). */
  emptyStatus?: number;
}

export async function read<T>(
  ctx: CatalogContext,
  req: FastifyRequest,
  reply: FastifyReply,
  run: () => QueryResult<T>,
  opts: ReadOptions = {},
): Promise<FastifyReply> {
  const q = query(req);
  const bp = blockingParams(q);
  const filterText = opts.filterable ? param(q, 'filter') : undefined;
  const predicate = filterText ? compileFilter(filterText) : undefined;
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
  let value: unknown = r.value;
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
    return reply.code(opts.emptyStatus).send();
  }
  return sendJSON(reply, value, q.pretty !== undefined);
}
