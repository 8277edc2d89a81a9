/** Small HTTP helpers for the config-entry and intention API tests. */
import { expect } from 'chai';
import { request } from 'undici';

export interface Reply {
  status: number;
  /** Parsed JSON, or undefined for an empty or non-JSON body. */
  body: unknown;
  text: string;
  /** X-Consul-Index, or 0 when absent. */
  index: number;
  headers: Record<string, string | string[] | undefined>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as it is instead of JSON-encoding `body`. */
  raw?: string;
}

export type Call = (method: string, path: string, opts?: CallOptions) => Promise<Reply>;

/** A caller for the server at `base()` (read late, so it can be set in a `before` hook). */
export function caller(base: () => string): Call {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers['x-consul-token'] = opts.token;
    const r = await request(`${base()}${path}`, {
      method: method as 'GET',
      headers,
      body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    });
    const text = await r.body.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return {
      status: r.statusCode,
      body,
      text,
      index: Number(r.headers['x-consul-index'] ?? 0),
      headers: r.headers,
    };
  };
}

/** A caller that expects 200 and returns the JSON body. */
export function okCaller(call: Call, token?: () => string) {
  return async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await call(method, path, { body, token: token?.() });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a blocking GET and reports whether it has answered yet, so a test can check that an
 * unrelated write leaves it waiting and a related one wakes it.
 */
export function blockingGet(call: Call, path: string, index: number, token?: string) {
  let answered: Reply | undefined;
  const sep = path.includes('?') ? '&' : '?';
  const pending = call('GET', `${path}${sep}index=${index}&wait=30s`, { token }).then((r) => {
    answered = r;
    return r;
  });
  return { pending, answered: () => answered };
}
