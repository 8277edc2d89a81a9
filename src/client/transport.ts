/**
 * The one place requests leave the client: encodes bodies, adds the token, enforces the
 * timeout, decodes responses, maps error statuses, and fails over between addresses.
 *
 *   request -> [address remembered last] -> [next address] -> ... -> unavailable(all tried)
 *
 * Only connection failures (refused, reset, timeout) move on to the next address: an HTTP
 * error status is an answer, and the same question would get the same answer elsewhere.
 */
import type { Agent as UndiciAgent, buildConnector as BuildConnector, Dispatcher } from 'undici';
import { Agent, buildConnector } from './undici-core.js';
import { systemClock, unavailable, type Clock, MeshError } from '../core/index.js';
import { parseAddress, type Endpoint } from './address.js';
import { failureReason, isConnectionFailure, mayRetryElsewhere, statusError } from './errors.js';

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** A query parameter: omitted when undefined or false, `true` sent as a presence flag. */
export type QueryValue = string | number | boolean | undefined | readonly string[];

export interface RequestOptions {
  method: HttpMethod;
  /** API path starting with "/v1/", already percent-encoded. */
  path: string;
  query?: Record<string, QueryValue>;
  /** string and Buffer bodies are sent as they are; anything else is JSON-encoded. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Overrides the client's timeout for this request (blocking queries need longer). */
  timeoutMs?: number;
  /** Return a 404 as a response instead of throwing (KV misses still carry an index). */
  allowNotFound?: boolean;
}

export interface ApiResponse<T = unknown> {
  status: number;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON (a T) when `json` is true; text for text/*; bytes otherwise. */
  body: T | string | Buffer;
  /** True when the body was decoded from application/json. */
  json: boolean;
  /** X-Consul-Index, when the server sent one. */
  index?: number;
}

export interface TlsOptions {
  /** CA bundle (PEM) the server certificate must chain to. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Client certificate and key (PEM), for servers that verify clients. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against, when it differs from the host. */
  serverName?: string;
  /** Skip server certificate verification. For tests only. */
  insecureSkipVerify?: boolean;
  /** Settings read at every new connection, overriding ca/cert/key (renewed certificates). */
  current?: () => { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

export interface TransportOptions {
  /** "host:port" or http(s) URLs, tried in order. */
  addresses: string[];
  /** Sent as X-Consul-Token. */
  token?: string;
  /** Per-request timeout in ms for non-blocking requests; default 30s. */
  timeoutMs?: number;
  /** TLS settings; bare "host:port" addresses use https when this is set. */
  tls?: TlsOptions;
  /** Timer source, injectable for tests. */
  clock?: Clock;
  /** A dispatcher to use instead of the client's own undici Agent. */
  dispatcher?: Dispatcher;
}

export interface Transport {
  request<T = unknown>(opts: RequestOptions): Promise<ApiResponse<T>>;
  /** Adds an address to fail over to (tried last); false when it is already one of them. */
  addAddress(address: string): boolean;
  close(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_CONNECT_TIMEOUT_MS = 10_000;
/** Longest server message kept in an error; servers answer errors with a short line. */
const MAX_ERROR_TEXT = 1000;

/** Marks a failure after which trying the next address makes sense. */
class ConnectionFailure extends Error {
  constructor(
    readonly reason: string,
    override readonly cause: unknown,
  ) {
    super(reason);
  }
}

export function createTransport(opts: TransportOptions): Transport {
  if (opts.addresses.length === 0) {
    throw new MeshError('MESH_ERR_BAD_REQUEST', 'user', 'No API address given', { status: 400 });
  }
  const endpoints = opts.addresses.map((a) => parseAddress(a, opts.tls !== undefined));
  const clock = opts.clock ?? systemClock;
  const defaultTimeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ownAgent = opts.dispatcher ? undefined : createAgent(opts.tls, defaultTimeout);
  const dispatcher: Dispatcher = opts.dispatcher ?? ownAgent!;
  // Index of the address that answered last; every request starts there.
  let preferred = 0;

  async function attempt<T>(ep: Endpoint, req: RequestOptions): Promise<ApiResponse<T>> {
    const timeoutMs = req.timeoutMs ?? defaultTimeout;
    const ctl = new AbortController();
    const onCallerAbort = () => ctl.abort(req.signal?.reason);
    req.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = clock.setTimeout(() => ctl.abort(new Error('timeout')), timeoutMs);
    try {
      if (req.signal?.aborted) throw req.signal.reason;
      const { body, contentType } = encodeBody(req.body);
      const headers: Record<string, string> = { ...req.headers };
      if (contentType && !hasHeader(headers, 'content-type')) headers['content-type'] = contentType;
      if (opts.token && !hasHeader(headers, 'x-consul-token'))
        headers['x-consul-token'] = opts.token;
      const res = await dispatcher.request({
        origin: ep.origin,
        path: ep.basePath + req.path + encodeQuery(req.query),
        method: req.method,
        headers,
        body,
        signal: ctl.signal,
        // Our own timer bounds the whole exchange; undici's would cut blocking queries short.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, ...decode<T>(res.statusCode, res.headers, bytes) };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      if (ctl.signal.aborted) {
        throw new ConnectionFailure(`timed out after ${timeoutMs}ms`, err);
      }
      if (isConnectionFailure(err)) throw new ConnectionFailure(failureReason(err), err);
      throw err;
    } finally {
      clock.clearTimeout(timer);
      req.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async function request<T>(req: RequestOptions): Promise<ApiResponse<T>> {
    const tried: string[] = [];
    let lastCause: unknown;
    for (let i = 0; i < endpoints.length; i++) {
      const at = (preferred + i) % endpoints.length;
      const ep = endpoints[at]!;
      let res: ApiResponse<T>;
      try {
        res = await attempt<T>(ep, req);
      } catch (err) {
        if (!(err instanceof ConnectionFailure)) throw err;
        tried.push(`${ep.label} (${err.reason})`);
        if (!mayRetryElsewhere(req.method, err.cause)) {
          throw unavailable(
            `Request to ${ep.label} failed after it was sent (${err.reason}); not retried elsewhere, it may have been applied`,
            err.cause,
          );
        }
        lastCause = err.cause;
        continue;
      }
      preferred = at;
      if (res.status >= 200 && res.status < 300) return res;
      if (res.status === 404 && req.allowNotFound) return res;
      throw statusError(res.status, errorText(res).slice(0, MAX_ERROR_TEXT), {
        method: req.method,
        path: req.path,
        address: ep.label,
      });
    }
    throw unavailable(`Cannot reach the Trellis HTTP API; tried ${tried.join(', ')}`, lastCause);
  }

  let closing: Promise<void> | undefined;
  return {
    request,
    addAddress(address) {
      const ep = parseAddress(address, opts.tls !== undefined);
      if (endpoints.some((e) => e.origin === ep.origin && e.basePath === ep.basePath)) return false;
      endpoints.push(ep);
      return true;
    },
    // Idempotent: undici rejects a second close of the same agent.
    close: () => (closing ??= ownAgent ? ownAgent.close() : Promise.resolve()),
  };
}

/** The server's message: its text, or the `error` of a JSON error body ({"error","field"}). */
function errorText(res: ApiResponse<unknown>): string {
  const text = String(res.body);
  if (!(res.headers['content-type'] ?? '').includes('application/json')) return text;
  try {
    const b = JSON.parse(text) as { error?: unknown } | null;
    return b && typeof b === 'object' && typeof b.error === 'string' ? b.error : text;
  } catch {
    return text;
  }
}

/**
 * A connector for certificates that change while a client runs (an agent renewing its own,
 * roots rotating): each new connection is made with the settings of the moment.
 */
export function currentTlsConnector(tls: TlsOptions, timeoutMs: number): BuildConnector.connector {
  return (opts, cb) => {
    const now = tls.current?.() ?? {};
    buildConnector({
      timeout: timeoutMs,
      ca: now.ca ?? tls.ca,
      cert: now.cert ?? tls.cert,
      key: now.key ?? tls.key,
      servername: tls.serverName,
      rejectUnauthorized: !tls.insecureSkipVerify,
    })(opts, cb);
  };
}

function createAgent(tls: TlsOptions | undefined, timeoutMs: number): UndiciAgent {
  const timeout = Math.min(timeoutMs, MAX_CONNECT_TIMEOUT_MS);
  if (tls?.current) return new Agent({ connect: currentTlsConnector(tls, timeout) });
  return new Agent({
    connect: {
      timeout,
      ...(tls && {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        servername: tls.serverName,
        rejectUnauthorized: !tls.insecureSkipVerify,
      }),
    },
  });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

function encodeBody(body: unknown): { body?: string | Buffer; contentType?: string } {
  if (body === undefined) return {};
  if (typeof body === 'string') return { body, contentType: 'text/plain; charset=utf-8' };
  if (Buffer.isBuffer(body)) return { body, contentType: 'application/octet-stream' };
  if (body instanceof Uint8Array) {
    return { body: Buffer.from(body), contentType: 'application/octet-stream' };
  }
  return { body: JSON.stringify(body), contentType: 'application/json' };
}

/** Builds the "?a=1&b=true" query text; false and undefined leave the parameter out. */
export function encodeQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === false) continue;
    if (Array.isArray(value)) {
      for (const v of value) params.append(name, v);
    } else {
      params.append(name, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function decode<T>(
  status: number,
  raw: Record<string, string | string[] | undefined>,
  bytes: Buffer,
): Omit<ApiResponse<T>, 'status'> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined)
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const index = parseIndex(headers['x-consul-index']);
  const type = (headers['content-type'] ?? '').toLowerCase();
  let body: T | string | Buffer;
  let json = false;
  if (status < 200 || status >= 300) {
    // Error answers are plain text; keep them as text whatever the content type says.
    body = bytes.toString('utf8');
  } else if (type.includes('application/json')) {
    json = true;
    body = bytes.length === 0 ? (null as T) : parseJson<T>(bytes);
  } else if (type.startsWith('text/') || bytes.length === 0) {
    body = bytes.toString('utf8');
  } else {
    body = bytes;
  }
  return index === undefined ? { headers, body, json } : { headers, body, json, index };
}

function parseJson<T>(bytes: Buffer): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new MeshError(
      'MESH_ERR_BAD_RESPONSE',
      'peer',
      'Cannot parse the server response: invalid JSON',
      {
        cause: err,
      },
    );
  }
}

/** Parses X-Consul-Index; a missing or malformed header gives undefined. */
export function parseIndex(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header.trim())) return undefined;
  const n = Number(header.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}
