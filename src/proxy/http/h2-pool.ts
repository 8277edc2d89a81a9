/**
 * HTTP/2 connections of the proxy's own (H2Conn) to one endpoint: a peer proxy over mTLS with
 * ALPN h2, or an h2c application. Requests from the proxy's HTTP/2 front (H2Exchange) are
 * opened as streams on a shared connection and linked to their client stream: the head is
 * re-encoded as the proxy edited it, DATA and trailers are forwarded as they come, both ways,
 * with flow control passed through. A connection is opened when none can take another stream
 * (the peer's concurrent-stream limit, GOAWAY) and closed when idle.
 *
 * Requests from other fronts (HTTP/1.1 clients) go to the stream-based fallback target.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Reason } from '../reasons.js';
import type { Downstream, LinkedResponse } from './downstream.js';
import { H2Conn, H2_CODE, type H2Stream, type StreamHandler } from './h2-conn.js';
import { H2Exchange, headersObject, withoutField } from './h2-front.js';
import { REASON_HEADER } from './headers.js';
import {
  SAFE_METHODS,
  targetError,
  type HttpTarget,
  type RequestHead,
  type SendCallback,
} from './targets.js';

export interface H2PoolOptions {
  /** Opens a connection to the endpoint (not yet connected). */
  connect(): Socket;
  /** The connection is TLS: it is ready at 'secureConnect' rather than 'connect'. */
  tls: boolean;
  /** A connection with no stream for this long is closed. */
  idleTimeoutMs: number;
  /** The target for requests that are not H2Exchanges (made when first needed). */
  fallback(): HttpTarget;
}

/** Times a request refused unprocessed is sent again on another connection of the pool. */
const MAX_RESENDS = 2;

/** One connection and whether it is ready (connected, TLS verified). */
interface PoolConn {
  conn: H2Conn;
  ready: boolean;
  /** Requests waiting for it to be ready. */
  waiting: (() => void)[];
  /** Why it failed before it was ready, if it did. */
  error: (Error & { reason?: Reason }) | undefined;
}

export class H2Pool implements HttpTarget {
  readonly #conns: PoolConn[] = [];
  #active = 0;
  #retired = false;
  #fallback: HttpTarget | undefined;

  constructor(readonly opts: H2PoolOptions) {}

  get active(): number {
    return this.#active + (this.#fallback?.active ?? 0);
  }

  get retired(): boolean {
    return this.#retired;
  }

  send(head: RequestHead, down: Downstream, cb: SendCallback, resends = 0): void {
    if (!(down instanceof H2Exchange))
      return (this.#fallback ??= this.opts.fallback()).send(head, down, cb);
    if (this.#retired) return cb(targetError(new Error('target closed'), true, true));
    const pc = this.#pick();
    this.#active++;
    const go = (): void => {
      if (pc.error || pc.conn.closed || !pc.conn.canOpen) {
        this.#active--;
        if (pc.error || pc.conn.closed)
          return cb(targetError(pc.error ?? new Error('connection closed'), true, true));
        // Became full or went away while connecting: another connection takes it.
        return this.send(head, down, cb, resends);
      }
      new UpStream(this, pc.conn, head, down, cb, resends);
    };
    if (pc.ready) go();
    else pc.waiting.push(go);
  }

  /** A stream of this pool ended. */
  done(): void {
    this.#active--;
  }

  #pick(): PoolConn {
    for (const pc of this.#conns) if (pc.conn.canOpen && !pc.error) return pc;
    const socket = this.opts.connect();
    const pc: PoolConn = {
      conn: new H2Conn(socket, {
        role: 'client',
        idleTimeoutMs: this.opts.idleTimeoutMs,
        onClose: () => {
          const i = this.#conns.indexOf(pc);
          if (i >= 0) this.#conns.splice(i, 1);
          if (!pc.ready) {
            pc.error ??= new Error('connection closed before it was ready');
            this.#release(pc);
          }
        },
      }),
      ready: false,
      waiting: [],
      error: undefined,
    };
    socket.once('error', (err: Error & { reason?: Reason }) => {
      if (!pc.ready) pc.error ??= err;
    });
    socket.once(this.opts.tls ? 'secureConnect' : 'connect', () => {
      pc.ready = true;
      this.#release(pc);
    });
    this.#conns.push(pc);
    return pc;
  }

  #release(pc: PoolConn): void {
    const w = pc.waiting;
    pc.waiting = [];
    for (const f of w) f();
  }

  close(): void {
    this.#retired = true;
    for (const pc of [...this.#conns]) pc.conn.drain();
    this.#fallback?.close();
  }

  destroy(): void {
    this.#retired = true;
    for (const pc of [...this.#conns]) pc.conn.destroy();
    this.#fallback?.destroy();
  }
}

/** One request on an upstream connection, linked to its client's stream. */
class UpStream implements StreamHandler, LinkedResponse {
  readonly stream: H2Stream;
  status = 0;
  headers: IncomingHttpHeaders = {};
  proxyReason: string | undefined;
  #fields: string[] = [];
  #answered = false;
  #linked: H2Exchange | undefined;
  #ended = false;
  /** Response data that came before the response was linked (discarded or relayed). */
  #early: { data: Buffer; end: boolean }[] | undefined;
  #earlyTrailers: string[] | undefined;

  constructor(
    private readonly pool: H2Pool,
    conn: H2Conn,
    private readonly head: RequestHead,
    private readonly ex: H2Exchange,
    private readonly cb: SendCallback,
    private readonly resends: number,
  ) {
    const fields = requestFields(head, pool.opts.tls ? 'https' : 'http');
    this.stream = conn.open(fields, !ex.hasBody, this);
    ex.linkBody(this.stream, () => this.#cancel());
  }

  // ---- what the upstream sends ----

  onHeaders(fields: string[], end: boolean): void {
    if (!this.#answered) {
      this.#answered = true;
      this.#fields = fields;
      this.headers = headersObject(fields);
      this.status = Number(this.headers[':status']);
      const r = this.headers[REASON_HEADER];
      this.proxyReason = typeof r === 'string' ? r : undefined;
      if (end) this.#end();
      this.cb(undefined, this);
      return;
    }
    // Trailers.
    this.#end();
    const ex = this.#linked;
    if (ex) ex.responseTrailers(fields);
    else this.#earlyTrailers = fields;
  }

  onData(data: Buffer, end: boolean): void {
    if (end) this.#end();
    const ex = this.#linked;
    if (ex) return ex.responseData(data, end);
    (this.#early ??= []).push({ data, end });
  }

  onReset(code: number, why: string): void {
    this.#end();
    if (this.#answered) {
      this.#linked?.abort();
      return;
    }
    this.#answered = true;
    // REFUSED_STREAM (or a GOAWAY that left it out): never processed, so it may go elsewhere;
    // so may a bodiless idempotent request whose connection died under it.
    const refused = code === H2_CODE.refusedStream;
    // Refused unprocessed (a GOAWAY that crossed the request, a full connection): sent again
    // on another connection to the same endpoint, as often as MAX_RESENDS allows.
    if (refused && this.resends < MAX_RESENDS && this.ex.replayable && !this.pool.retired) {
      this.pool.send(this.head, this.ex, this.cb, this.resends + 1);
      return;
    }
    const retry = SAFE_METHODS.has(this.head.method) && this.ex.bytesIn() === 0;
    this.cb(targetError(new Error(`upstream stream reset (${code}): ${why}`), retry, refused));
  }

  // ---- the response, as the proxy relays it ----

  dropProxyReason(): void {
    this.#fields = withoutField(this.#fields, REASON_HEADER);
    delete this.headers[REASON_HEADER];
    this.proxyReason = undefined;
  }

  discard(): void {
    this.#early = undefined;
    if (!this.stream.closed) this.stream.reset(H2_CODE.cancel);
    this.#end();
  }

  linkInto(ex: H2Exchange): void {
    this.#linked = ex;
    const up = this.stream;
    // Response bytes given back to the upstream once they left towards the client.
    ex.stream.onSent = (n) => up.credit(n);
    ex.attach(() => this.#cancel());
    const early = this.#early;
    this.#early = undefined;
    const fields = withoutField(this.#fields, ':status');
    const endNow = up.remoteEnded && !early && !this.#earlyTrailers;
    ex.respond(this.status, fields, endNow);
    if (early) for (const e of early) ex.responseData(e.data, e.end);
    if (this.#earlyTrailers) ex.responseTrailers(this.#earlyTrailers);
  }

  #cancel(): void {
    if (!this.stream.closed) this.stream.reset(H2_CODE.cancel);
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.pool.done();
    // The answer is complete but the request body is not: the peer does not want the rest
    // (it would have said so with RST_STREAM NO_ERROR); stop the stream rather than leave it
    // half open on the shared connection.
    const s = this.stream;
    if (s.remoteEnded && !s.localEnded && !s.closed) queueMicrotask(() => s.reset(H2_CODE.cancel));
  }
}

/** The request head as an HTTP/2 field list: pseudo-headers first, Host as :authority. */
function requestFields(head: RequestHead, scheme: string): string[] {
  const out = [
    ':method',
    head.method,
    ':scheme',
    scheme,
    ':authority',
    head.authority,
    ':path',
    head.path,
  ];
  const h = head.headers;
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k === 'host') continue;
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else out.push(k, String(v));
  }
  return out;
}
