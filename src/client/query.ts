/**
 * Read plumbing shared by every API group: blocking-query parameters, the longer timeout a
 * blocking call needs, and turning a response into `{ value, index }`.
 */
import { MeshError, badRequest, parseDuration } from '../core/index.js';
import type { ApiResponse, QueryValue, Transport } from './transport.js';

/** Options every read accepts. */
export interface QueryOptions {
  /** Block until the result's index is greater than this (Consul blocking query). */
  index?: number;
  /** Longest time the server may hold a blocking query, as a Go duration ("30s"). */
  wait?: string;
  signal?: AbortSignal;
  /** Datacenter to ask; the server's own by default. */
  dc?: string;
  /** Server-side filter expression. */
  filter?: string;
  /** Let any server answer, possibly with slightly old data. */
  stale?: boolean;
  /** Ask the leader to confirm it is still the leader before answering. */
  consistent?: boolean;
}

/** What every read returns: the decoded value and the X-Consul-Index to block on next. */
export interface QueryResult<T> {
  value: T;
  /** 0 when the server sent no index (endpoints that do not block). */
  index: number;
}

/** The wait a server applies when a blocking query names none. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
/** Slack on top of the server's own jitter (wait/16) for the answer to arrive. */
const BLOCKING_SLACK_MS = 5_000;

/** Timeout for a blocking call: the wait, the server's jitter of up to wait/16, and 5s. */
export function blockingTimeoutMs(waitMs: number): number {
  return Math.ceil(waitMs + waitMs / 16 + BLOCKING_SLACK_MS);
}

/** Query parameters and timeout for a read. */
export function readParams(opts: QueryOptions = {}): {
  query: Record<string, QueryValue>;
  timeoutMs?: number;
} {
  const query: Record<string, QueryValue> = {
    dc: opts.dc,
    filter: opts.filter,
    stale: opts.stale,
    consistent: opts.consistent,
  };
  if (opts.index !== undefined && (!Number.isSafeInteger(opts.index) || opts.index < 0)) {
    throw badRequest(`Invalid index ${opts.index}: must be a non-negative integer`, 'index');
  }
  let waitMs: number | undefined;
  if (opts.wait !== undefined) {
    waitMs = parseDuration(opts.wait);
    if (waitMs === undefined) {
      throw badRequest(`Invalid wait "${opts.wait}": expected a duration such as "30s"`, 'wait');
    }
    query.wait = opts.wait;
  }
  const blocking = (opts.index ?? 0) > 0;
  if (blocking) query.index = opts.index;
  if (!blocking && waitMs === undefined) return { query };
  return { query, timeoutMs: blockingTimeoutMs(waitMs ?? DEFAULT_WAIT_MS) };
}

/** The JSON value of a response, or a MeshError when the server sent something else. */
export function jsonValue<T>(res: ApiResponse<T>): T {
  if (res.json) return res.body as T;
  if (typeof res.body === 'string') {
    try {
      return JSON.parse(res.body) as T;
    } catch {
      // Fall through to the error below.
    }
  }
  throw new MeshError(
    'MESH_ERR_BAD_RESPONSE',
    'peer',
    `Unexpected response: expected JSON, got ${res.headers['content-type'] ?? 'no content type'}`,
  );
}

/** GETs a JSON resource as `{ value, index }`; with `notFound` given, a 404 yields it. */
export async function read<T>(
  transport: Transport,
  path: string,
  opts: QueryOptions | undefined,
  extra: { query?: Record<string, QueryValue>; notFound?: T } = {},
): Promise<QueryResult<T>> {
  const { query, timeoutMs } = readParams(opts);
  const res = await transport.request<T>({
    method: 'GET',
    path,
    query: { ...query, ...extra.query },
    signal: opts?.signal,
    timeoutMs,
    allowNotFound: 'notFound' in extra,
  });
  const index = res.index ?? 0;
  if (res.status === 404) return { value: extra.notFound as T, index };
  return { value: jsonValue(res), index };
}

/** Percent-encodes one path segment, refusing an empty one. */
export function segment(value: string, what: string): string {
  if (value === '') throw badRequest(`Missing ${what}`, what);
  return encodeURIComponent(value);
}
