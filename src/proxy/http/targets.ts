/**
 * Where a request goes next: the local application (plain HTTP/1.1 or h2c) or an upstream
 * service's proxy (mTLS). A target owns its pooled connections: an HTTP/2 target keeps one
 * multiplexed session and opens a new one when it closes or receives GOAWAY; an HTTP/1.1
 * target keeps a keep-alive pool. Both report failures that happened before anything was sent
 * as retryable, so the caller can try another endpoint.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { REASON, type Reason } from '../reasons.js';
import { streamResponse, type Downstream, type UpstreamResponse } from './downstream.js';
import type { AddedField } from './headers.js';

export interface RequestHead {
  method: string;
  /** Path and query. */
  path: string;
  authority: string;
  /** End-to-end headers, already filtered: the request's own object, which a target may add to. */
  headers: OutgoingHttpHeaders;
  /**
   * The X-Forwarded-Client-Cert field the proxy adds (also in `headers`). The spliced HTTP/1.1
   * pool (h1-pool.ts) writes an H1Exchange's head from the bytes received, by the rules that
   * made `headers` (request-headers.ts), then this: it does not read `headers`.
   */
  identity?: AddedField | undefined;
}

export interface TargetError extends Error {
  reason: Reason;
  /** Another endpoint may be tried (nothing was sent, or an idempotent request lost its connection). */
  retryable: boolean;
  /**
   * Nothing of the request reached the peer (no connection, or the peer refused the stream
   * unprocessed): whatever its method, it may go elsewhere.
   */
  notSent: boolean;
}

export type SendCallback = (err: TargetError | undefined, res?: UpstreamResponse) => void;

export interface HttpTarget {
  /** Sends one request; the callback runs once, with the response head or an error. */
  send(head: RequestHead, down: Downstream, cb: SendCallback): void;
  /** Requests in flight (for the least-request balancer). */
  readonly active: number;
  /** close() or destroy() was called: the pool was replaced (new certificates, endpoint gone). */
  readonly retired: boolean;
  /** Stops taking requests; those in flight finish. */
  close(): void;
  destroy(): void;
}

export function targetError(
  err: Error & { reason?: Reason },
  retryable: boolean,
  notSent: boolean,
): TargetError {
  const e = err as TargetError;
  e.reason = err.reason ?? REASON.upstreamConnectFailure;
  e.retryable = retryable || notSent;
  e.notSent = notSent;
  return e;
}

/** RST_STREAM REFUSED_STREAM: the peer did not process the stream at all (RFC 9113 8.7). */
const REFUSED_STREAM = 7;

/** Methods a proxy may resend when the connection failed before any answer (RFC 9110 9.2.2). */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface Http2TargetOptions {
  /** `https://host:port` or `http://host:port` (h2c to a local app). */
  origin: string;
  /** Opens the connection (mTLS with ALPN h2 for upstream proxies). */
  connect?: () => Duplex;
  /** Idle sessions are closed after this long. */
  idleTimeoutMs: number;
}

export class Http2Target implements HttpTarget {
  #session: ClientHttp2Session | undefined;
  #ready = false;
  #waiting: ((err: (Error & { reason?: Reason }) | undefined) => void)[] = [];
  #closed = false;
  #active = 0;
  readonly #sessions = new Set<ClientHttp2Session>();

  constructor(private readonly opts: Http2TargetOptions) {}

  get active(): number {
    return this.#active;
  }

  send(head: RequestHead, down: Downstream, cb: SendCallback): void {
    this.#withSession((err, session) => {
      if (err || !session) return cb(targetError(err ?? new Error('closed'), true, true));
      this.#stream(session, head, down, cb);
    });
  }

  #stream(
    session: ClientHttp2Session,
    head: RequestHead,
    down: Downstream,
    cb: SendCallback,
  ): void {
    // The head's headers are this request's own copy already (filtered for it): no second copy.
    const h = head.headers;
    delete h.host; // :authority carries it (RFC 9113 8.3.1)
    h[':method'] = head.method;
    h[':path'] = head.path;
    h[':authority'] = head.authority;
    let stream;
    try {
      stream = session.request(h);
    } catch (e) {
      return cb(targetError(e as Error, true, true));
    }
    this.#active++;
    let answered = false;
    let cancelled = false;
    let trailers: IncomingHttpHeaders | undefined;
    const answer = (err: TargetError | undefined, res?: UpstreamResponse): void => {
      if (answered) return;
      answered = true;
      cb(err, res);
    };
    stream.once('response', (headers, flags: number) => {
      answer(
        undefined,
        streamResponse(
          Number(headers[':status']),
          headers,
          stream,
          () => trailers,
          (flags & 1) /* END_STREAM */ !== 0,
        ),
      );
    });
    stream.once('trailers', (t) => {
      trailers = t;
    });
    stream.on('error', (err) => {
      if (cancelled) return;
      if (answered) down.abort();
      else
        answer(
          targetError(
            err,
            SAFE_METHODS.has(head.method) && down.bytesIn() === 0,
            stream.rstCode === REFUSED_STREAM,
          ),
        );
    });
    stream.once('close', () => {
      if (--this.#active === 0 && this.#closed) this.#endSessions();
      // REFUSED_STREAM: the peer did not process it, so it may go elsewhere; so may a
      // bodiless idempotent request whose connection died under it.
      const refused = stream.rstCode === REFUSED_STREAM;
      const retry = SAFE_METHODS.has(head.method) && down.bytesIn() === 0;
      if (!answered)
        answer(
          targetError(new Error(`stream reset (${stream.rstCode})`), retry, refused),
          undefined,
        );
      else if (stream.rstCode !== 0) down.abort();
    });
    down.onDone((completed) => {
      if (completed || stream.closed) return;
      // Not close(CANCEL): it ends the writable side (END_STREAM) before the RST_STREAM, and
      // the peer hands its app a truncated body as complete. destroy(err) sends only a reset.
      cancelled = true;
      stream.destroy(new Error('downstream aborted'));
    });
    down.sendBodyTo(stream);
  }

  #withSession(
    cb: (err: (Error & { reason?: Reason }) | undefined, s?: ClientHttp2Session) => void,
  ): void {
    if (this.#closed) return cb(new Error('target closed'));
    const s = this.#session;
    if (s && !s.closed && !s.destroyed) {
      if (this.#ready) return cb(undefined, s);
      this.#waiting.push((err) => cb(err, err ? undefined : s));
      return;
    }
    const session = h2connect(this.opts.origin, {
      ...(this.opts.connect ? { createConnection: this.opts.connect } : {}),
      settings: { enablePush: false },
      maxHeaderListPairs: 256,
    });
    this.#session = session;
    this.#ready = false;
    this.#sessions.add(session);
    this.#waiting.push((err) => cb(err, err ? undefined : session));
    const flush = (err: (Error & { reason?: Reason }) | undefined): void => {
      const w = this.#waiting;
      this.#waiting = [];
      for (const f of w) f(err);
    };
    const retire = (): void => {
      if (this.#session === session) {
        this.#session = undefined;
        this.#ready = false;
      }
    };
    session.once('connect', () => {
      if (this.#session === session) this.#ready = true;
      flush(undefined);
    });
    session.on('error', (err: Error & { reason?: Reason }) => {
      retire();
      flush(err);
    });
    session.once('goaway', retire);
    session.once('close', () => {
      retire();
      this.#sessions.delete(session);
      flush(new Error('session closed'));
    });
    session.setTimeout(this.opts.idleTimeoutMs, () => session.close());
  }

  get retired(): boolean {
    return this.#closed;
  }

  /**
   * Takes no new requests; sessions end once the requests in flight have. (Closing a session
   * with streams in flight sends GOAWAY, and measured under load some of those streams were
   * then reset: so it waits for them instead.)
   */
  close(): void {
    this.#closed = true;
    if (this.#active === 0 && this.#waiting.length === 0) this.#endSessions();
  }

  #endSessions(): void {
    for (const s of this.#sessions) {
      if (s.connecting) s.once('connect', () => s.close());
      else s.close();
    }
  }

  destroy(): void {
    this.#closed = true;
    for (const s of this.#sessions) s.destroy();
  }
}

export interface Http1TargetOptions {
  host: string;
  port: number;
  /** mTLS settings for an upstream proxy; absent for the local app (plain HTTP). */
  tls?: ConnectionOptions;
  idleTimeoutMs: number;
}

export class Http1Target implements HttpTarget {
  readonly #agent: HttpAgent;
  #active = 0;
  #retired = false;

  constructor(private readonly opts: Http1TargetOptions) {
    this.#agent = opts.tls
      ? new HttpsAgent({
          keepAlive: true,
          timeout: opts.idleTimeoutMs,
          ...opts.tls,
          ALPNProtocols: ['http/1.1'],
        })
      : new HttpAgent({ keepAlive: true, timeout: opts.idleTimeoutMs });
  }

  get active(): number {
    return this.#active;
  }

  send(head: RequestHead, down: Downstream, cb: SendCallback): void {
    const headers = head.headers;
    headers.host = head.authority;
    const options = {
      agent: this.#agent,
      host: this.opts.host,
      port: this.opts.port,
      method: head.method,
      path: head.path,
      headers,
    };
    const req: ClientRequest = this.opts.tls ? httpsRequest(options) : httpRequest(options);
    this.#active++;
    let sent = false;
    let answered = false;
    const answer: SendCallback = (err, res) => {
      if (answered) return;
      answered = true;
      cb(err, res);
    };
    req.once('socket', (s: Socket) => {
      const go = (): void => {
        sent = true;
        down.sendBodyTo(req);
      };
      if (s.connecting) s.once(this.opts.tls ? 'secureConnect' : 'connect', go);
      else go();
    });
    req.once('response', (r) => {
      answer(
        undefined,
        streamResponse(r.statusCode ?? 502, r.headers, r, () => undefined, false),
      );
    });
    req.on('error', (err) => {
      if (answered) down.abort();
      else answer(targetError(err, !sent, !sent));
    });
    req.once('close', () => {
      this.#active--;
    });
    down.onDone((completed) => {
      if (!completed) req.destroy();
    });
  }

  get retired(): boolean {
    return this.#retired;
  }

  close(): void {
    this.#retired = true;
    // Idle sockets go now; busy ones finish their request and then idle out.
    for (const list of Object.values(this.#agent.freeSockets))
      for (const s of list ?? []) s.destroy();
  }

  destroy(): void {
    this.#retired = true;
    this.#agent.destroy();
  }
}
