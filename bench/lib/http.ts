/** HTTP client helpers over undici: keep-alive connection pools and small request wrappers. */
import { Pool } from 'undici';

export interface PoolOptions {
  /** Most sockets the pool opens (one request in flight per socket: no pipelining). */
  connections: number;
}

export function makePool(origin: string, opts: PoolOptions): Pool {
  return new Pool(origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 120_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    connectTimeout: 30_000,
  });
}

export interface Reply {
  status: number;
  /** X-Consul-Index, or 0 when absent. */
  index: number;
  body: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 200)}`);
  }
}

function consulIndex(value: string | string[] | undefined): number {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined ? 0 : Number(v);
}

/** One request; resolves with the whole body. Never throws on an HTTP status. */
export async function send(
  pool: Pool,
  method: 'GET' | 'PUT',
  path: string,
  body?: string,
): Promise<Reply> {
  const res = await pool.request({
    method,
    path,
    ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, index: consulIndex(res.headers['x-consul-index']), body: text };
}

/** Like send, but a non-2xx answer is an HttpError. */
export async function sendOk(
  pool: Pool,
  method: 'GET' | 'PUT',
  path: string,
  body?: string,
): Promise<Reply> {
  const r = await send(pool, method, path, body);
  if (r.status < 200 || r.status > 299) throw new HttpError(r.status, r.body, `${method} ${path}`);
  return r;
}

export function putJson(pool: Pool, path: string, value: unknown): Promise<Reply> {
  return sendOk(pool, 'PUT', path, JSON.stringify(value));
}
