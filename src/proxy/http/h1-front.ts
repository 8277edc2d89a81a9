/**
 * The proxy's own HTTP/1.1 server side: it reads a client connection's bytes, parses only
 * each request's head (h1-parse.ts), and moves the body as bytes in the framing the head
 * declared (h1-body.ts), without node:http's IncomingMessage/ServerResponse or streams. Each
 * request becomes an H1Exchange, a Downstream the inbound and outbound handlers decide and
 * forward as they do any other; a pooled upstream connection (h1-pool.ts) splices the bytes.
 *
 * Requests on one connection are served one after the other: a pipelined request waits, its
 * bytes held, until the response before it is complete. Timeouts are checked by one sweep per
 * second over the connections (no timer per request): a head must arrive within
 * headersTimeoutMs (else 408), an idle keep-alive connection is closed after keepAliveMs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Writable } from 'node:stream';
import { REASON, type Reason } from '../reasons.js';
import { BodyFramer, BodyKind } from './h1-body.js';
import {
  NO_LENGTH,
  headersOf,
  isHeadError,
  parseRequestBytes,
  type RequestHeadBytes,
} from './h1-parse.js';
import { REASON_HEADER, endToEnd } from './headers.js';
import { MAX_HEADER_BYTES } from './limits.js';
import { BARE_LF, HeadReader, MORE, TOO_LARGE } from './h1-head-reader.js';
import {
  isSpliced,
  isStream,
  type Downstream,
  type StreamResponse,
  type UpstreamResponse,
} from './downstream.js';
import { REPLAY_LIMIT } from './body-replay.js';

export interface H1FrontOptions<C> {
  /** HTTP/1.1 requests without Host are refused (the public side) or accepted. */
  requireHost: boolean;
  /** A client must send a request head within this time (slowloris). */
  headersTimeoutMs: number;
  /** A keep-alive connection idle between requests is closed after this long. */
  keepAliveMs: number;
  /** A request whose body is still arriving this long after its head is cut with 408. */
  requestTimeoutMs: number;
  /** A connection with a request in flight and no bytes either way for this long is cut. */
  idleTimeoutMs: number;
  /** A request the front refused itself (parse error, tunnel, timeout). */
  onRefused(ctx: C, status: number, reason: Reason): void;
}

/** Bytes of request body (or pipelined requests) held before the client is paused. */
const HOLD_LIMIT = 64 * 1024;
/** After a refusal, how long a client that keeps sending may hold the connection. */
const LINGER_MS = 5_000;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A complete response the proxy makes itself (no body beyond `body`). */
export function selfResponse(status: number, reason: Reason, body: string, close: boolean): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
    `content-type: text/plain; charset=utf-8\r\n${REASON_HEADER}: ${reason}\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    (close ? 'connection: close\r\n\r\n' : '\r\n') +
    body
  );
}

export class H1Front<C> {
  readonly #conns = new Set<H1Conn<C>>();
  #tick = 0;
  readonly #sweep: NodeJS.Timeout;

  constructor(
    readonly handle: (ex: H1Exchange, ctx: C) => void,
    readonly opts: H1FrontOptions<C>,
  ) {
    this.#sweep = setInterval(() => this.#sweepOnce(), 1_000);
    this.#sweep.unref();
  }

  get tick(): number {
    return this.#tick;
  }

  /** Serves `socket`; every request on it is handled with `ctx`. */
  accept(socket: Socket, ctx: C): void {
    socket.setNoDelay(true);
    const conn = new H1Conn(this, socket, ctx);
    this.#conns.add(conn);
    socket.once('close', () => {
      this.#conns.delete(conn);
      conn.closed();
    });
  }

  close(): void {
    clearInterval(this.#sweep);
    for (const c of this.#conns) c.socket.destroy();
    this.#conns.clear();
  }

  /** Draining: no request after the one in flight; idle keep-alive connections end now. */
  #draining = false;

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Lets the requests in flight finish, each answered with `connection: close`, and ends every
   * connection once it has no request in flight (idle ones at once).
   */
  drain(): void {
    this.#draining = true;
    for (const c of this.#conns) c.drainIdle();
  }

  #sweepOnce(): void {
    this.#tick++;
    const now = this.#tick * 1000;
    for (const c of this.#conns) c.sweep(now);
  }
}

const enum Wait {
  /** Waiting for a first request, or a started head: the headers timeout applies. */
  Head,
  /** Between requests on a keep-alive connection: the keep-alive timeout applies. */
  KeepAlive,
  /** A request is in flight. */
  Busy,
}

export class H1Conn<C> {
  #wait = Wait.Head;
  /** Sweep tick (seconds) when the current wait began. */
  #since: number;
  readonly #reader = new HeadReader(MAX_HEADER_BYTES);
  /** Bytes received while busy with a request whose body is complete (pipelining). */
  #stash: Buffer | undefined;
  #ex: H1Exchange | undefined;
  #processing = false;
  #closing = false;
  /**
   * The client half-closed: no more bytes will come, but the requests it already sent
   * (pipelined ones held in #stash included) are still answered before our side closes.
   */
  #ended = false;
  readonly framer = new BodyFramer();

  constructor(
    readonly front: H1Front<C>,
    readonly socket: Socket,
    readonly ctx: C,
  ) {
    this.#since = front.tick;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => this.#onEnd());
    socket.setTimeout(front.opts.idleTimeoutMs, () => socket.destroy());
  }

  sweep(nowMs: number): void {
    const waited = nowMs - this.#since * 1000;
    if (this.#wait === Wait.Head && waited >= this.front.opts.headersTimeoutMs)
      this.refuse(408, REASON.downstreamTimeout);
    else if (
      this.#wait === Wait.Busy &&
      this.#ex?.bodyDone === false &&
      waited >= this.front.opts.requestTimeoutMs
    )
      this.refuse(408, REASON.downstreamTimeout);
    else if (this.#wait === Wait.KeepAlive && waited >= this.front.opts.keepAliveMs)
      this.socket.end();
  }

  get draining(): boolean {
    return this.front.draining;
  }

  /**
   * The front is draining: ends the connection now if it is idle between requests. One with a
   * request in flight ends after its answer (`finished`); one that has not sent its first
   * request yet (just opened, or a head arriving) is waiting for that request to be answered,
   * so it gets its answer (with `connection: close`) rather than a close that races it, and
   * the headers timeout still bounds it.
   */
  drainIdle(): void {
    if (this.#wait !== Wait.KeepAlive || this.#ex !== undefined) return;
    if (this.#processing || this.#closing) return;
    this.#closing = true;
    this.socket.end();
  }

  /** The client closed its side: finish what is in flight, then close ours. */
  #onEnd(): void {
    this.#ended = true;
    if (this.#ex === undefined) this.#endIfDone();
    else this.#ex.clientEnded();
  }

  /** After the client's FIN, ends our side once no request is in flight or held. */
  #endIfDone(): void {
    if (!this.#ended || this.#closing || this.#processing || this.#ex !== undefined) return;
    this.#closing = true;
    this.socket.end();
  }

  closed(): void {
    this.#ex?.clientGone();
  }

  #onData(d: Buffer): void {
    if (this.#stash !== undefined) {
      this.#stash = Buffer.concat([this.#stash, d]);
      if (this.#stash.length > HOLD_LIMIT) this.socket.pause();
      return;
    }
    this.#process(d, 0);
  }

  #process(buf: Buffer, i: number): void {
    this.#processing = true;
    try {
      while (i < buf.length && !this.#closing) {
        const ex = this.#ex;
        if (ex === undefined) {
          i = this.#readHead(buf, i);
          if (i < 0) return;
        } else if (!ex.bodyDone) {
          i = ex.takeBody(buf, i);
          if (i < 0) return;
        } else {
          // The next request waits until this one's response is complete.
          this.#stash = i === 0 ? buf : buf.subarray(i);
          if (this.#stash.length > HOLD_LIMIT) this.socket.pause();
          return;
        }
      }
    } finally {
      this.#processing = false;
    }
    this.#endIfDone();
  }

  /** Collects and parses a head from buf[i]: the index after it, or -1 (more needed, or refused). */
  #readHead(buf: Buffer, i: number): number {
    if (this.#wait !== Wait.Head) {
      this.#wait = Wait.Head;
      this.#since = this.front.tick;
    }
    const headEnd = this.#reader.read(buf, i);
    if (headEnd === MORE) return -1;
    if (headEnd === BARE_LF || headEnd === TOO_LARGE) {
      this.refuse(headEnd === BARE_LF ? 400 : 431, REASON.badRequest);
      return -1;
    }
    const reader = this.#reader;
    const head = parseRequestBytes(reader.buf, reader.start, reader.end);
    reader.release();
    if (isHeadError(head)) {
      this.refuse(head.status, REASON.badRequest);
      return -1;
    }
    if (head.upgrade || head.method === 'CONNECT') {
      this.refuse(403, REASON.unauthorized);
      return -1;
    }
    if (this.front.opts.requireHost && head.minor === 1 && head.hostCount === 0) {
      this.refuse(400, REASON.badRequest);
      return -1;
    }
    const target = head.target;
    if (target.charCodeAt(0) !== 47 /* '/' */ && !(head.method === 'OPTIONS' && target === '*')) {
      this.refuse(400, REASON.badRequest);
      return -1;
    }
    const ex = new H1Exchange(this, head);
    this.#ex = ex;
    this.#wait = Wait.Busy;
    this.#since = this.front.tick;
    // The body bytes that came with the head are taken before the request is decided, so a
    // small body is complete (and a refusal can keep the connection) by then.
    let next = headEnd;
    if (!ex.bodyDone && next < buf.length) next = ex.takeBody(buf, next);
    if (next >= 0 && this.#ex === ex) this.front.handle(ex, this.ctx);
    return next;
  }

  /** Answers a request the front refused itself, and closes the connection. */
  refuse(status: number, reason: Reason): void {
    this.front.opts.onRefused(this.ctx, status, reason);
    const ex = this.#ex;
    this.#closing = true;
    this.#ex = undefined;
    if (ex?.headSent) return void this.socket.destroy();
    ex?.clientGone();
    this.#endWith(selfResponse(status, reason, '', true));
  }

  #endWith(text: string): void {
    const s = this.socket;
    if (!s.writable) return void s.destroy();
    s.end(text, 'latin1');
    setTimeout(() => s.destroy(), LINGER_MS).unref();
  }

  /** The exchange is over; `keep` says whether the connection may serve another request. */
  finished(ex: H1Exchange, keep: boolean): void {
    if (this.#ex !== ex) return;
    this.#ex = undefined;
    if (!keep || this.#closing || this.front.draining) {
      this.#closing = true;
      this.socket.end();
      return;
    }
    this.#wait = Wait.KeepAlive;
    this.#since = this.front.tick;
    this.socket.resume();
    const stash = this.#stash;
    if (stash !== undefined && !this.#processing) {
      this.#stash = undefined;
      this.#process(stash, 0);
    }
    this.#endIfDone();
  }
}

/** What an exchange needs of its connection. */
interface ExchangeConn {
  readonly socket: Socket;
  readonly framer: BodyFramer;
  /** The front is draining: this response is the connection's last. */
  readonly draining: boolean;
  refuse(status: number, reason: Reason): void;
  finished(ex: H1Exchange, keep: boolean): void;
}

/** Where the body goes once the request is forwarded. */
interface BodySink {
  write(piece: Buffer): boolean;
  end(): void;
  /** Calls `fn` once the sink can take more. */
  onDrain(fn: () => void): void;
}

/** One request on an H1Conn: a Downstream whose body and response move as bytes. */
export class H1Exchange implements Downstream {
  readonly version = '1.1' as const;
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly grpc: boolean;
  readonly hasBody: boolean;
  /** The head as received (its bytes are kept while the request is forwarded). */
  readonly head: RequestHeadBytes;
  bodyDone: boolean;
  /** The response head has been written to the client. */
  headSent = false;
  #headers: IncomingHttpHeaders | undefined;
  /** Body pieces received before the request had somewhere to go. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  /** Every body piece so far, while they fit REPLAY_LIMIT (for a resend). */
  #replay: Buffer[] | undefined;
  #replayBytes = 0;
  /** The body outgrew REPLAY_LIMIT: it cannot be sent again. */
  #replayLost = false;
  #sink: BodySink | undefined;
  #rx = 0;
  #tx = 0;
  #done: ((completed: boolean) => void)[] | undefined;
  #over = false;
  /** Ends the upstream connection carrying this request, if the client goes away first. */
  #onGone: (() => void) | undefined;

  constructor(
    readonly conn: ExchangeConn,
    head: RequestHeadBytes,
  ) {
    this.head = head;
    this.method = head.method;
    this.target = head.target;
    this.authority = head.host ?? '';
    this.grpc = head.grpc;
    const f = conn.framer;
    if (head.chunked) f.start(BodyKind.Chunked, 0, true);
    else if (head.contentLength !== NO_LENGTH) f.start(BodyKind.Length, head.contentLength, true);
    else f.start(BodyKind.None, 0, true);
    this.bodyDone = f.done;
    this.hasBody = !f.done;
  }

  /** Field lines as received: made into strings only when asked for. */
  get rawHeaders(): readonly string[] {
    return this.head.rawHeaders;
  }

  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersOf(this.rawHeaders));
  }

  get responded(): boolean {
    return this.headSent;
  }

  /** The whole body so far is kept, so it can be sent again to another endpoint. */
  get replayable(): boolean {
    return !this.#replayLost;
  }

  /** Takes body bytes from buf[i]; returns where they end, or -1 after refusing bad framing. */
  takeBody(buf: Buffer, i: number): number {
    const f = this.conn.framer;
    const end = f.feed(buf, i);
    if (end < 0) {
      this.conn.refuse(400, REASON.badRequest);
      return -1;
    }
    if (end > i) this.#piece(i === 0 && end === buf.length ? buf : buf.subarray(i, end));
    if (f.done) {
      this.bodyDone = true;
      this.#rx = f.data;
      this.#sink?.end();
    }
    return end;
  }

  #piece(p: Buffer): void {
    if (!this.#replayLost) {
      this.#replayBytes += p.length;
      if (this.#replayBytes <= REPLAY_LIMIT) (this.#replay ??= []).push(p);
      else {
        this.#replay = undefined;
        this.#replayLost = true;
      }
    }
    const sink = this.#sink;
    if (sink === undefined) {
      (this.#held ??= []).push(p);
      this.#heldBytes += p.length;
      if (this.#heldBytes > HOLD_LIMIT) this.conn.socket.pause();
      return;
    }
    if (!sink.write(p)) {
      const s = this.conn.socket;
      s.pause();
      sink.onDrain(() => s.resume());
    }
  }

  /**
   * Sends the body (what arrived so far, then the rest as it comes) to `sink`. A second call
   * (a resend to another endpoint) starts again from the kept copy.
   */
  bodyTo(sink: BodySink): void {
    const first = this.#sink === undefined;
    this.#sink = sink;
    const pieces = (first ? this.#held : this.#replay) ?? [];
    this.#held = undefined;
    this.#heldBytes = 0;
    for (const p of pieces) sink.write(p);
    if (this.bodyDone) sink.end();
    this.conn.socket.resume();
  }

  sendBodyTo(w: Writable): void {
    // A target that is not spliced (an HTTP/2 application, after a plan changed the app's
    // protocol under an open connection) takes body data, not chunk framing: such a request
    // is reset rather than sent with framing the application would read as data.
    if (this.head.chunked) return this.abort();
    const pass = new PassThrough();
    pass.pipe(w);
    this.bodyTo({
      write: (p) => pass.write(p),
      end: () => pass.end(),
      onDrain: (fn) => pass.once('drain', fn),
    });
  }

  /** Bytes for the client: counted, with backpressure onto `source` (the upstream socket). */
  writeOut(piece: Buffer, source: Socket | undefined): void {
    this.#tx += piece.length;
    const s = this.conn.socket;
    if (!s.write(piece) && source) {
      source.pause();
      s.once('drain', () => source.resume());
    }
  }

  /** Writes a 1xx interim response head as received (an HTTP/1.0 client gets none). */
  interim(raw: string): void {
    if (this.head.minor === 1 && !this.#over) this.conn.socket.write(raw, 'latin1');
  }

  /** Writes a response head the proxy made itself (a refusal, a re-framed stream response). */
  writeHead(text: string): void {
    this.headSent = true;
    this.conn.socket.write(text, 'latin1');
  }

  /**
   * Writes `out`: a response head followed by the body's first `bodyBytes` bytes, in one
   * buffer (one write, one TLS record), with backpressure onto `source`.
   */
  writeHeadBytes(out: Buffer, bodyBytes: number, source: Socket | undefined): void {
    this.headSent = true;
    this.#tx += bodyBytes;
    if (!this.conn.socket.write(out) && source) {
      source.pause();
      this.conn.socket.once('drain', () => source.resume());
    }
  }

  /** Whether the connection must close after this response (the client asked, or the body is unread). */
  get closeAfter(): boolean {
    return this.head.close || !this.bodyDone || this.conn.draining;
  }

  /** The upstream connection carrying this request: `onGone` ends it if the client goes away. */
  attach(onGone: () => void): void {
    this.#onGone = onGone;
  }

  /** The response is complete; `keep`: the client connection may carry another request. */
  complete(keep: boolean): void {
    this.#onGone = undefined;
    this.#finish(true, keep && !this.closeAfter);
  }

  relay(res: UpstreamResponse): void {
    // The client went away meanwhile: the response is not wanted, and its connection must
    // not wait for a splice that never comes.
    if (this.#over) return res.discard();
    if (isSpliced(res)) return res.spliceInto(this);
    if (!isStream(res)) return this.abort(); // linked responses answer HTTP/2 streams only
    this.#relayStream(res);
  }

  /** A response from a stream target (an HTTP/2 application): re-framed as chunked. */
  #relayStream(res: StreamResponse): void {
    const h = endToEnd(res.headers, { dropIdentity: false });
    let text = `HTTP/1.1 ${res.status} ${STATUS_TEXT[res.status] ?? 'OK'}\r\n`;
    const bodiless =
      this.method === 'HEAD' || res.status === 204 || res.status === 304 || res.headOnly;
    for (const k in h) {
      const v = h[k];
      if (v === undefined || k === 'content-length') continue;
      if (Array.isArray(v)) for (const x of v) text += `${k}: ${x}\r\n`;
      else text += `${k}: ${String(v)}\r\n`;
    }
    if (!bodiless) text += 'transfer-encoding: chunked\r\n';
    if (this.closeAfter) text += 'connection: close\r\n';
    this.writeHead(`${text}\r\n`);
    if (bodiless) {
      res.body.resume();
      return this.complete(true);
    }
    const s = this.conn.socket;
    res.body.on('data', (d: Buffer) => {
      this.#tx += d.length;
      if (!s.write(`${d.length.toString(16)}\r\n`) || !s.write(d) || !s.write('\r\n')) {
        res.body.pause();
        s.once('drain', () => res.body.resume());
      }
    });
    res.body.once('end', () => {
      s.write('0\r\n\r\n');
      this.complete(true);
    });
    res.body.once('error', () => this.abort());
  }

  refuse(status: number, reason: Reason, message: string): void {
    if (this.#over) return;
    const body = `${message}\n`;
    this.#tx += Buffer.byteLength(body);
    const close = this.closeAfter;
    this.headSent = true;
    this.conn.socket.write(selfResponse(status, reason, body, close), 'utf8');
    this.#finish(true, !close);
  }

  malformed(reason: Reason, message: string): void {
    this.refuse(400, reason, message);
  }

  abort(): void {
    if (this.#over) return;
    this.conn.socket.destroy();
    this.#finish(false, false);
  }

  /** The client half-closed: a request whose body was still coming cannot complete. */
  clientEnded(): void {
    if (!this.bodyDone) this.abort();
  }

  /** The client's connection closed. */
  clientGone(): void {
    if (this.#over) return;
    const gone = this.#onGone;
    this.#onGone = undefined;
    gone?.();
    this.#finish(false, false);
  }

  #finish(completed: boolean, keep: boolean): void {
    if (this.#over) return;
    this.#over = true;
    if (this.bodyDone) this.#rx = this.conn.framer.data;
    const done = this.#done;
    this.#done = undefined;
    if (done) for (const f of done) f(completed);
    this.conn.finished(this, keep);
  }

  get over(): boolean {
    return this.#over;
  }

  onDone(fn: (completed: boolean) => void): void {
    (this.#done ??= []).push(fn);
  }

  bytesIn(): number {
    return this.bodyDone ? this.#rx : this.conn.framer.data;
  }

  bytesOut(): number {
    return this.#tx;
  }
}
