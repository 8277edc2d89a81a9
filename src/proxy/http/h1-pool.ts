/**
 * Pooled HTTP/1.1 connections to one endpoint (an upstream service's proxy over mTLS, or the
 * local application in plain text) for requests that arrived on the proxy's own HTTP/1.1
 * front (h1-front.ts). A request's head is written as the proxy edited it, its body as the
 * bytes the client sent; the response head is parsed, edited, and the body spliced back as
 * received. Keep-alive connections go back to the pool when both messages ended cleanly, so
 * proxies talk over warm connections with no handshake per request (HAProxy's
 * `http-reuse always`).
 *
 * Requests from other fronts (HTTP/2 clients) go to the stream-based fallback target.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { REASON, type Reason } from '../reasons.js';
import type { Downstream, SplicedResponse } from './downstream.js';
import { BodyFramer, BodyKind } from './h1-body.js';
import { H1Exchange } from './h1-front.js';
import { NO_LENGTH, headersOf, isHeadError } from './h1-parse.js';
import { writeRequestHead } from './h1-request-write.js';
import { parseResponseBytes, type ResponseHead } from './h1-response-head.js';
import { MAX_HEADER_BYTES } from './limits.js';
import {
  SAFE_METHODS,
  targetError,
  type HttpTarget,
  type RequestHead,
  type SendCallback,
} from './targets.js';

export interface H1PoolOptions {
  /** Opens a connection to the endpoint (not yet connected). */
  connect(): Socket;
  /** The connection is TLS: it is ready at 'secureConnect' rather than 'connect'. */
  tls: boolean;
  /** A pooled connection idle this long is closed. */
  idleTimeoutMs: number;
  /** The target for requests that are not H1Exchanges (made when first needed). */
  fallback(): HttpTarget;
  /**
   * The peer is a Trellis proxy, which closes a kept-alive connection without answering only
   * before it has read a request on it (keep-alive timeout, drain; h1-front.ts ignores bytes
   * once it decided to close). A request that met such a close on a reused connection was not
   * handed to any app, so it is resent with its kept body (POSTs included) as well as without.
   */
  peerIsTrellis?: boolean;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** A first body piece up to this size is sent in the request head's buffer. */
const JOIN_LIMIT = 16 * 1024;

/** Pools with idle connections, swept once a second (no timer per connection). */
const sweeping = new Set<H1Pool>();
let sweepTick = 0;
let sweeper: NodeJS.Timeout | undefined;
function watchIdle(pool: H1Pool): void {
  sweeping.add(pool);
  if (sweeper) return;
  sweeper = setInterval(() => {
    sweepTick++;
    for (const p of sweeping) if (!p.sweepIdle(sweepTick)) sweeping.delete(p);
    if (sweeping.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, 1_000);
  sweeper.unref();
}

export class H1Pool implements HttpTarget {
  readonly #idle: UpConn[] = [];
  readonly #all = new Set<UpConn>();
  #active = 0;
  #retired = false;
  #fallback: HttpTarget | undefined;

  constructor(readonly opts: H1PoolOptions) {}

  get active(): number {
    return this.#active + (this.#fallback?.active ?? 0);
  }

  get retired(): boolean {
    return this.#retired;
  }

  send(head: RequestHead, down: Downstream, cb: SendCallback): void {
    if (!(down instanceof H1Exchange))
      return (this.#fallback ??= this.opts.fallback()).send(head, down, cb);
    if (this.#retired) return cb(targetError(new Error('target closed'), true, true));
    this.#active++;
    this.#takeIdle().run(head, down, cb);
  }

  /**
   * The most recently pooled connection still open, else a new one. A pooled connection
   * closed by the idle sweep or by stray bytes is dropped from the list at once, but one
   * the peer ended may stay listed until its 'close': never send on it (a body could not
   * be resent to an app).
   */
  #takeIdle(): UpConn {
    for (let c = this.#idle.pop(); c !== undefined; c = this.#idle.pop())
      if (!c.socket.destroyed && c.socket.writable) return c;
    return this.#open();
  }

  /** Sends on a new connection (a reused one was found closed before it answered). */
  resend(head: RequestHead, ex: H1Exchange, cb: SendCallback): void {
    if (this.#retired) return cb(targetError(new Error('target closed'), true, true));
    this.#active++;
    this.#open().run(head, ex, cb, true);
  }

  #open(): UpConn {
    const c = new UpConn(this, this.opts.connect(), this.opts.tls);
    this.#all.add(c);
    return c;
  }

  /** A connection finished its exchange: pooled again if it can be, else closed. */
  released(c: UpConn, reusable: boolean): void {
    this.#active--;
    if (!reusable || this.#retired) {
      c.socket.destroy();
      return;
    }
    c.idleSince = sweepTick;
    this.#idle.push(c);
    if (this.#idle.length === 1) watchIdle(this);
  }

  /** Stopped being busy without an answer (failed): counted out, not pooled. */
  failed(): void {
    this.#active--;
  }

  gone(c: UpConn): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** Closes connections idle past the timeout; false once none are idle. */
  sweepIdle(tick: number): boolean {
    const limit = Math.max(1, Math.ceil(this.opts.idleTimeoutMs / 1000));
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const c = this.#idle[i]!;
      if (tick - c.idleSince < limit) continue;
      // Out of the list now, not at its 'close': a request in between must not take it.
      this.#idle.splice(i, 1);
      c.socket.destroy();
    }
    return this.#idle.length > 0;
  }

  close(): void {
    this.#retired = true;
    // Idle connections go now; busy ones are closed when their exchange ends.
    for (const c of [...this.#idle]) c.socket.destroy();
    this.#fallback?.close();
  }

  destroy(): void {
    this.#retired = true;
    for (const c of [...this.#all]) c.socket.destroy();
    this.#fallback?.destroy();
  }
}

const enum Phase {
  Idle,
  /** Waiting for the connection, then the response head. */
  Head,
  /** The response head was handed to the caller, which has not spliced or discarded it yet. */
  Handed,
  Body,
}

/** One connection of a pool. */
class UpConn {
  ready = false;
  /** It served a request before (a failure with no answer may be a keep-alive race). */
  reused = false;
  idleSince = 0;
  #phase = Phase.Idle;
  #ex: H1Exchange | undefined;
  #cb: SendCallback | undefined;
  #request: RequestHead | undefined;
  #resent = false;
  /** The request head is not written yet: it goes with the first body piece, if one is here. */
  #headPending = false;
  /** Request bytes were written / response bytes were received. */
  #wrote = false;
  #heard = false;
  #head: Buffer | undefined;
  #res: H1Response | undefined;
  readonly framer = new BodyFramer();
  /** Ends the connection (its exchange's client went away): one function for every exchange. */
  readonly #destroy = (): void => void this.socket.destroy();

  constructor(
    readonly pool: H1Pool,
    readonly socket: Socket,
    tls: boolean,
  ) {
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      socket.setNoDelay(true);
      this.ready = true;
      if (this.#ex) this.#write();
    });
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (err: Error & { reason?: Reason }) => this.#ended(err));
    socket.on('end', () => this.#ended(undefined));
    socket.once('close', () => {
      this.#ended(undefined);
      pool.gone(this);
    });
  }

  run(head: RequestHead, ex: H1Exchange, cb: SendCallback, resent = false): void {
    this.#phase = Phase.Head;
    this.#ex = ex;
    this.#cb = cb;
    this.#request = head;
    this.#resent = resent;
    this.#wrote = false;
    this.#heard = false;
    ex.attach(this.#destroy);
    if (this.ready) this.#write();
  }

  #write(): void {
    const s = this.socket;
    const ex = this.#ex!;
    this.#wrote = true;
    // A request whose body is all here and empty (most mesh calls) is one write of its head.
    if (ex.bodyDone && !ex.hasBody) return void s.write(this.#headFor(undefined));
    s.cork();
    // The body bytes already here come through write() at once: the first joins the head.
    this.#headPending = true;
    ex.bodyTo(this);
    if (this.#headPending) {
      this.#headPending = false;
      s.write(this.#headFor(undefined));
    }
    s.uncork();
  }

  /** The request head for this connection's peer, followed by `body`. */
  #headFor(body: Buffer | undefined): Buffer {
    const head = this.#request!;
    return writeRequestHead(this.#ex!.head, head.path, head.authority, head.identity?.line, body);
  }

  /** BodySink: the request body's bytes, as the client framed them. */
  write(piece: Buffer): boolean {
    if (this.#headPending) {
      this.#headPending = false;
      // One buffer (one TLS record) for the head and a small first piece; a large one follows.
      if (piece.length <= JOIN_LIMIT) return this.socket.write(this.#headFor(piece));
      this.socket.write(this.#headFor(undefined));
    }
    return this.socket.write(piece);
  }

  end(): void {}

  onDrain(fn: () => void): void {
    this.socket.once('drain', fn);
  }

  #onData(d: Buffer): void {
    this.#heard = true;
    switch (this.#phase) {
      case Phase.Idle:
      case Phase.Handed:
        // Bytes nobody asked for (or a body before the caller took the head): not reusable.
        if (this.#phase === Phase.Idle) {
          this.pool.gone(this);
          return void this.socket.destroy();
        }
        this.#head = this.#head ? Buffer.concat([this.#head, d]) : d;
        return;
      case Phase.Head:
        return this.#readHead(this.#head ? Buffer.concat([this.#head, d]) : d);
      case Phase.Body:
        return this.#body(d, 0);
    }
  }

  #readHead(buf: Buffer): void {
    let at = 0;
    for (;;) {
      const end = buf.indexOf(CRLFCRLF, at);
      if (end < 0) {
        // A bare LF is refused as in requests; unchecked, a head ending in LF LF is never
        // found and the client waits for the idle timeout instead of getting an answer. (In
        // a complete head the parser refuses any LF that does not end a line.)
        if (hasBareLf(buf, at, buf.length)) return this.#bad('bare LF in the response head');
        if (buf.length - at > MAX_HEADER_BYTES) return this.#bad('response head too large');
        this.#head = at === 0 ? buf : buf.subarray(at);
        return;
      }
      if (end - at > MAX_HEADER_BYTES) return this.#bad('response head too large');
      const parsed = parseResponseBytes(buf, at, end);
      if (isHeadError(parsed)) return this.#bad(parsed.message);
      if (parsed.status < 200) {
        // 101 would switch protocols, which no request through the proxy asked for.
        if (parsed.status === 101) return this.#bad('unexpected 101 Switching Protocols');
        this.#ex!.interim(buf.toString('latin1', at, end + 4));
        at = end + 4;
        continue;
      }
      at = end + 4;
      this.#head = undefined;
      const ex = this.#ex!;
      const kind =
        ex.method === 'HEAD' || parsed.status === 204 || parsed.status === 304
          ? BodyKind.None
          : parsed.chunked
            ? BodyKind.Chunked
            : parsed.contentLength !== NO_LENGTH
              ? BodyKind.Length
              : BodyKind.UntilClose;
      this.framer.start(kind, parsed.contentLength, false);
      const res = new H1Response(this, parsed, at < buf.length ? buf.subarray(at) : undefined);
      this.#res = res;
      this.#phase = Phase.Handed;
      const cb = this.#cb!;
      this.#cb = undefined;
      cb(undefined, res);
      return;
    }
  }

  /** The caller relays `res` to `ex`: head first, then the body as it comes. */
  splice(res: H1Response, ex: H1Exchange, early: Buffer | undefined): void {
    if (this.#phase !== Phase.Handed || this.#res !== res) return ex.abort();
    this.#phase = Phase.Body;
    const close = ex.closeAfter || this.framer.kind === BodyKind.UntilClose;
    const held = this.#head;
    this.#head = undefined;
    const first = early && held ? Buffer.concat([early, held]) : (early ?? held);
    if (!first) {
      ex.writeHeadBytes(res.headFor(close, undefined), 0, undefined);
      if (this.framer.done) this.#complete(false);
      return;
    }
    // The head and the body bytes already here leave in one buffer: one write, one TLS record.
    const end = this.framer.feed(first, 0);
    if (end < 0) return this.#badBody(ex);
    const body = end === first.length ? first : first.subarray(0, end);
    ex.writeHeadBytes(res.headFor(close, body), body.length, this.socket);
    if (this.framer.done) this.#complete(end < first.length);
  }

  /** The response body's framing is broken: the exchange is cut and the connection dropped. */
  #badBody(ex: H1Exchange): void {
    this.#phase = Phase.Idle;
    this.#ex = undefined;
    this.pool.released(this, false);
    ex.abort();
  }

  /** The caller does not want the body (it sends the request elsewhere). */
  discard(res: H1Response): void {
    if (this.#res !== res || this.#phase !== Phase.Handed) return;
    this.#res = undefined;
    this.#phase = Phase.Idle;
    this.#ex = undefined;
    this.pool.released(this, false);
  }

  #body(buf: Buffer, i: number): void {
    const ex = this.#ex!;
    const end = this.framer.feed(buf, i);
    if (end < 0) return this.#badBody(ex);
    if (end > i)
      ex.writeOut(i === 0 && end === buf.length ? buf : buf.subarray(i, end), this.socket);
    if (this.framer.done) this.#complete(end < buf.length);
  }

  /** The response ended; `extra`: the peer sent bytes past it (the connection is not reused). */
  #complete(extra: boolean): void {
    const ex = this.#ex!;
    const res = this.#res!;
    this.#phase = Phase.Idle;
    this.#ex = undefined;
    this.#res = undefined;
    this.#request = undefined;
    const reusable = !extra && !res.head.close && ex.bodyDone && !ex.over;
    this.reused = true;
    // Pooled before the client's next request is read, so that request can take it.
    this.pool.released(this, reusable);
    ex.complete(true);
  }

  /** The connection ended or failed (err undefined: closed by the peer). */
  #ended(err: (Error & { reason?: Reason }) | undefined): void {
    const ex = this.#ex;
    if (!ex) return;
    const phase = this.#phase;
    this.#ex = undefined;
    this.#phase = Phase.Idle;
    if (phase === Phase.Body) {
      // A body delimited by the close ends here; any other body was cut.
      if (err === undefined && this.framer.kind === BodyKind.UntilClose) {
        this.#res = undefined;
        this.pool.released(this, false);
        return ex.complete(false);
      }
      this.pool.failed();
      return ex.abort();
    }
    this.pool.failed();
    if (phase === Phase.Handed) return ex.abort();
    const cb = this.#cb;
    this.#cb = undefined;
    if (!cb || ex.over) return;
    const request = this.#request!;
    // A pooled connection the peer closed as it was reused (the keep-alive race): nothing was
    // read from it, and a request without a body, or any kept one to a Trellis peer, can go
    // on a new connection.
    if (
      this.reused &&
      !this.#heard &&
      !this.#resent &&
      (!ex.hasBody || (this.pool.opts.peerIsTrellis === true && ex.replayable))
    )
      return this.pool.resend(request, ex, cb);
    const notSent = !this.#wrote;
    const e = err ?? new Error('connection closed before the response');
    if (!err && this.#wrote) (e as Error & { reason?: Reason }).reason = REASON.localAppReset;
    cb(targetError(e, notSent || (SAFE_METHODS.has(ex.method) && !ex.hasBody), notSent));
  }

  #bad(why: string): void {
    const ex = this.#ex;
    const cb = this.#cb;
    this.#ex = undefined;
    this.#cb = undefined;
    this.#phase = Phase.Idle;
    this.pool.released(this, false);
    if (cb && ex && !ex.over) {
      const e = new Error(`bad response: ${why}`) as Error & { reason?: Reason };
      e.reason = REASON.localAppReset;
      cb(targetError(e, false, false));
    } else ex?.abort();
  }
}

/** Whether buf[from, to) has an LF not preceded by CR (an LF at `from` counts as bare). */
function hasBareLf(buf: Buffer, from: number, to: number): boolean {
  for (let at = buf.indexOf(10, from); at >= 0 && at < to; at = buf.indexOf(10, at + 1))
    if (at === from || buf[at - 1] !== 13) return true;
  return false;
}

/** A response head from an UpConn, spliced into the exchange that asked for it. */
class H1Response implements SplicedResponse {
  readonly status: number;
  #headers: IncomingHttpHeaders | undefined;
  proxyReason: string | undefined;
  #dropReason = false;

  constructor(
    readonly conn: UpConn,
    readonly head: ResponseHead,
    readonly early: Buffer | undefined,
  ) {
    this.status = head.status;
    if (head.reasonLine >= 0) this.proxyReason = head.valueAt(head.reasonLine);
  }

  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersOf(this.head.rawHeaders));
  }

  dropProxyReason(): void {
    this.#dropReason = true;
    this.proxyReason = undefined;
  }

  spliceInto(ex: H1Exchange): void {
    this.conn.splice(this, ex, this.early);
  }

  discard(): void {
    this.conn.discard(this);
  }

  /**
   * The head for the client (end-to-end fields as received, then the framing the body is
   * spliced with, written from the parsed head: never dropped because the peer listed it in
   * Connection), followed by `body`.
   */
  headFor(close: boolean, body: Buffer | undefined): Buffer {
    return this.head.writeFor(close, this.#dropReason, body);
  }
}
