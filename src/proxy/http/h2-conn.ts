/**
 * One HTTP/2 connection (RFC 9113) read and written by the proxy itself, for either end: the
 * server side of a client's connection or the client side of a connection to a peer proxy or
 * an h2c application. It frames, decodes header blocks (HPACK, with the field rules of RFC 9113
 * 8.2.1) and keeps flow control, and nothing else: streams carry header field lists and DATA
 * payloads to their handler, and a proxy links two streams so that a request's and a
 * response's DATA frames are forwarded as payload slices without any per-request stream
 * object of Node's.
 *
 * Output is batched: every frame produced while JavaScript runs goes out in one write per
 * connection when the current callback ends (a microtask), so the frames of many streams
 * answered from one read share one TLS record and one system call.
 *
 * Limits against hostile peers (each ends the connection with GOAWAY, or refuses a stream):
 * frame size, header block size (CONTINUATION floods), header list size and count, concurrent
 * streams, streams refused past the limit, stream resets by the peer (rapid reset), invalid
 * frames, control frames queued behind a peer that does not read (PING and SETTINGS floods),
 * flow-control violations and idleness.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeHeaderBlock } from './hpack-encoder.js';
import { HpackDecoder } from './hpack.js';
import { isValidField } from './h2-fields.js';
import {
  H2_HEADER_TABLE_SIZE,
  H2_MAX_FRAME_SIZE,
  H2_MAX_HEADER_BLOCK_BYTES,
  MAX_HEADER_BYTES,
  MAX_HEADER_COUNT,
} from './limits.js';

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export const H2_CODE = {
  noError: 0x0,
  protocol: 0x1,
  internal: 0x2,
  flowControl: 0x3,
  streamClosed: 0x5,
  frameSize: 0x6,
  refusedStream: 0x7,
  cancel: 0x8,
  compression: 0x9,
  enhanceYourCalm: 0xb,
} as const;

const SETTING = {
  headerTableSize: 0x1,
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
  maxHeaderListSize: 0x6,
} as const;

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const MAX_WINDOW = 0x7fffffff;
/** The protocol's initial windows (RFC 9113 6.9.2). */
const DEFAULT_WINDOW = 65_535;

/** The window each stream of ours starts with, and the connection's. */
export const STREAM_WINDOW = 256 * 1024;
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Streams a client may have open at once on the proxy (Envoy's default is 100). */
export const MAX_CONCURRENT_STREAMS = 128;
/** Streams refused past the limit, and invalid frames, before the connection is ended. */
const MAX_REFUSED_STREAMS = 100;
const MAX_INVALID_FRAMES = 100;
/** Stream resets a peer may make in a burst, and per second after it (rapid reset). */
const RESET_BURST = 200;
const RESETS_PER_SECOND = 50;
/**
 * CONTINUATION frames one header block may use. The byte limit alone does not bound a flood of
 * empty CONTINUATIONs (CVE-2024-28182 class: each one costs a frame parse and a stored part,
 * and the block never ends). A block at the byte limit needs 4 at our 16 KiB frame size;
 * 32 leaves room for peers that split blocks finely (nghttp2's default is 8).
 */
const MAX_CONTINUATIONS = 32;
/** Bytes queued for a peer that does not read, past which it is cut off (control floods). */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Socket backlog past which credits for forwarded bytes are held until it drains. */
const HELD_CREDIT_BYTES = 1024 * 1024;
/** How long a connection told GOAWAY for abuse may take to flush it. */
const GOAWAY_GRACE_MS = 1_000;

const EMPTY = Buffer.alloc(0);

/** What happens to one stream: told in order, at most one of onReset/onEnd last. */
export interface StreamHandler {
  /** A header block: the response head (client side), or trailers (`end` is then true). */
  onHeaders(fields: string[], end: boolean): void;
  /** Payload of a DATA frame (padding removed); `end`: the peer ended the stream. */
  onData(data: Buffer, end: boolean): void;
  /** The stream was reset (by the peer, or because the connection ended) with `code`. */
  onReset(code: number, why: string): void;
  /** Sending is possible again after the windows had closed (optional). */
  onDrain?(): void;
}

export interface H2ConnOptions {
  role: 'server' | 'client';
  /** Server: a request head opened `stream`; its handler must be set before returning. */
  onStream?(stream: H2Stream, fields: string[], end: boolean): void;
  /**
   * Server: a request head broke a field rule; the stream has been reset with PROTOCOL_ERROR.
   * `fields` holds what was decoded (for the record).
   */
  onRefusedStream?(fields: string[], why: string): void;
  /** The connection ended (closed, failed or went away and drained). */
  onClose?(): void;
  /** The peer sent GOAWAY: streams above `lastStreamId` were never processed. */
  onGoaway?(lastStreamId: number, code: number): void;
  /** No stream open for this long: GOAWAY and close (0: never). */
  idleTimeoutMs: number;
  /** Server: the client preface must arrive within this (0: no limit). */
  prefaceTimeoutMs?: number;
}

/** One stream: windows, the data it could not send yet, and who handles what arrives. */
export class H2Stream {
  handler: StreamHandler | undefined;
  /** What the peer lets us send on this stream. */
  sendWindow: number;
  /** What the peer may still send on this stream, and bytes forwarded but not yet given back. */
  recvWindow = STREAM_WINDOW;
  unacked = 0;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  /** Data waiting for window: chunks, and whether END_STREAM (or trailers) follows them. */
  queue: Buffer[] = [];
  queued = 0;
  queuedEnd = false;
  queuedTrailers: string[] | undefined;
  /** Called with the byte count once queued bytes leave (the source's credit). */
  onSent: ((n: number) => void) | undefined;
  /** Server: the declared content-length of the request (-1: none), and the bytes seen. */
  expectedLength = -1;
  receivedLength = 0;
  /** Client side: the final response head arrived (a later block is trailers). */
  headReceived = false;

  constructor(
    readonly conn: H2Conn,
    readonly id: number,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  /** Sends a header block; `end` ends the stream with it. */
  headers(fields: readonly string[], end: boolean): void {
    this.conn.sendHeaders(this, fields, end);
  }

  /** Sends `data` (may be queued for window); `onSent` on the stream tells when it left. */
  data(data: Buffer, end: boolean): void {
    this.conn.sendData(this, data, end);
  }

  /** Ends the stream after any queued data, with trailers. */
  trailers(fields: readonly string[]): void {
    this.conn.sendTrailers(this, fields);
  }

  reset(code: number): void {
    this.conn.resetStream(this, code);
  }

  /** Gives `n` received bytes back to the peer (they were forwarded). */
  credit(n: number): void {
    this.conn.credit(this, n);
  }
}

const enum ReadState {
  Preface,
  Frames,
  Dead,
}

export class H2Conn {
  readonly streams = new Map<number, H2Stream>();
  /** Highest stream id the peer opened (server) / we opened (client). */
  lastStreamId = 0;
  #nextId = 1;
  /** Peer settings. */
  #peerMaxFrame = 16_384;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxStreams = Number.POSITIVE_INFINITY;
  /** Connection windows: what we may send; what the peer may still send; forwarded bytes not yet given back. */
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = CONNECTION_WINDOW;
  #unacked = 0;
  /** Streams with data waiting for the connection window. */
  readonly #blocked = new Set<H2Stream>();
  readonly #decoder = new HpackDecoder(H2_HEADER_TABLE_SIZE);
  #read = ReadState.Preface;
  #pending: Buffer = EMPTY;
  /** An open header block: its stream, flags of its HEADERS frame, fragments. */
  #blockStream = 0;
  #blockFlags = 0;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #blockContinuations = 0;
  /** Output batched until the current callback ends. */
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #goingAway = false;
  #closed = false;
  #refused = 0;
  #invalid = 0;
  #resetTokens = RESET_BURST;
  #resetAt = performance.now();
  #idleTimer: NodeJS.Timeout | undefined;
  /** Credits held back while the socket's own buffer is full. */
  #heldCredit: (() => void)[] = [];
  readonly #flush = (): void => this.#flushNow();

  constructor(
    readonly socket: Socket,
    private readonly opts: H2ConnOptions,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => this.destroy());
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.#onClosed());
    socket.on('drain', () => this.#drained());
    if (opts.role === 'client') {
      this.#read = ReadState.Frames;
      this.#queue(CLIENT_PREFACE);
      this.#nextId = 1;
    } else this.#nextId = 2;
    this.#sendSettings();
    this.#queueWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#armIdle();
    if (opts.role === 'server' && opts.prefaceTimeoutMs) {
      const t = setTimeout(() => {
        if (this.#read === ReadState.Preface) this.destroy();
      }, opts.prefaceTimeoutMs);
      t.unref();
      socket.once('close', () => clearTimeout(t));
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** GOAWAY was sent or received: no new streams. */
  get goingAway(): boolean {
    return this.#goingAway;
  }

  /** Client: whether another stream may be opened now. */
  get canOpen(): boolean {
    return !this.#closed && !this.#goingAway && this.streams.size < this.#peerMaxStreams;
  }

  /** Client: opens a stream with a request head. */
  open(fields: readonly string[], end: boolean, handler: StreamHandler): H2Stream {
    const id = this.#nextId;
    this.#nextId += 2;
    const s = new H2Stream(this, id, this.#peerInitialWindow);
    s.handler = handler;
    this.streams.set(id, s);
    this.lastStreamId = id;
    this.#disarmIdle();
    this.sendHeaders(s, fields, end);
    return s;
  }

  /** Stops new streams (GOAWAY NO_ERROR); closes once the open ones end. */
  drain(): void {
    if (this.#closed) return;
    if (!this.#goingAway) this.#goaway(H2_CODE.noError);
    if (this.streams.size === 0) this.#endSoon();
  }

  destroy(): void {
    if (this.#closed) return;
    this.socket.destroy();
    this.#onClosed();
  }

  // ---- sending ----

  sendHeaders(s: H2Stream, fields: readonly string[], end: boolean): void {
    if (s.closed || s.localEnded) return;
    const block = encodeHeaderBlock(fields);
    const max = this.#peerMaxFrame;
    let flags = end ? END_STREAM : 0;
    if (block.length <= max) {
      this.#frame(FRAME.HEADERS, flags | END_HEADERS, s.id, block);
    } else {
      let at = 0;
      let type: number = FRAME.HEADERS;
      while (at < block.length) {
        const n = Math.min(max, block.length - at);
        const last = at + n >= block.length;
        this.#frame(type, flags | (last ? END_HEADERS : 0), s.id, block.subarray(at, at + n));
        at += n;
        type = FRAME.CONTINUATION;
        flags = 0;
      }
    }
    if (end) this.#localEnd(s);
  }

  sendData(s: H2Stream, data: Buffer, end: boolean): void {
    if (s.closed || s.localEnded) return;
    if (s.queued > 0 || s.queuedEnd) {
      if (data.length > 0) {
        s.queue.push(data);
        s.queued += data.length;
      }
      if (end) s.queuedEnd = true;
      return;
    }
    const sent = this.#sendWithin(s, data, end);
    if (sent < data.length) {
      s.queue.push(sent === 0 ? data : data.subarray(sent));
      s.queued += data.length - sent;
      if (end) s.queuedEnd = true;
      this.#blocked.add(s);
    } else if (end) this.#localEnd(s);
    if (sent > 0 && s.onSent) this.#credited(s.onSent, sent);
  }

  sendTrailers(s: H2Stream, fields: readonly string[]): void {
    if (s.closed || s.localEnded) return;
    if (s.queued > 0) {
      s.queuedTrailers = [...fields];
      s.queuedEnd = true;
      return;
    }
    this.sendHeaders(s, fields, true);
  }

  resetStream(s: H2Stream, code: number): void {
    if (s.closed) return;
    this.#frame(FRAME.RST_STREAM, 0, s.id, u32(code));
    this.#closeStream(s);
  }

  /** Gives `n` bytes back to the peer on `s` and the connection. */
  credit(s: H2Stream, n: number): void {
    if (this.#closed || n === 0) return;
    this.#creditConnection(n);
    if (s.closed || s.remoteEnded) return;
    s.unacked += n;
    if (s.unacked >= STREAM_WINDOW / 2) {
      this.#queueWindowUpdate(s.id, s.unacked);
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  #creditConnection(n: number): void {
    this.#unacked += n;
    if (this.#unacked >= CONNECTION_WINDOW / 2) {
      this.#queueWindowUpdate(0, this.#unacked);
      this.#recvWindow += this.#unacked;
      this.#unacked = 0;
    }
  }

  /** Sends what the windows allow of `data` now; returns how many bytes went. */
  #sendWithin(s: H2Stream, data: Buffer, end: boolean): number {
    let at = 0;
    const total = data.length;
    if (total === 0) {
      if (end) this.#frame(FRAME.DATA, END_STREAM, s.id, EMPTY);
      return 0;
    }
    while (at < total) {
      const room = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (room <= 0) break;
      const n = Math.min(room, total - at);
      const last = at + n === total;
      this.#frame(
        FRAME.DATA,
        last && end ? END_STREAM : 0,
        s.id,
        n === total ? data : data.subarray(at, at + n),
      );
      s.sendWindow -= n;
      this.#sendWindow -= n;
      at += n;
    }
    return at;
  }

  /** Sends queued data of `s` as far as the windows now allow. */
  #pump(s: H2Stream): void {
    let sent = 0;
    while (s.queue.length > 0) {
      const chunk = s.queue[0]!;
      const n = this.#sendWithin(s, chunk, false);
      sent += n;
      if (n < chunk.length) {
        s.queue[0] = chunk.subarray(n);
        break;
      }
      s.queue.shift();
    }
    s.queued -= sent;
    if (sent > 0 && s.onSent) this.#credited(s.onSent, sent);
    if (s.queue.length > 0) {
      this.#blocked.add(s);
      return;
    }
    this.#blocked.delete(s);
    if (s.queuedEnd) {
      s.queuedEnd = false;
      const t = s.queuedTrailers;
      s.queuedTrailers = undefined;
      if (t) this.sendHeaders(s, t, true);
      else {
        this.#frame(FRAME.DATA, END_STREAM, s.id, EMPTY);
        this.#localEnd(s);
      }
    }
    s.handler?.onDrain?.();
  }

  /**
   * Tells the source of `n` sent bytes that they left, so it gives them back to its peer; held
   * while this socket's own buffer is full, so a slow reader here slows the sender there.
   */
  #credited(onSent: (n: number) => void, n: number): void {
    if (this.socket.writableLength + this.#outBytes > HELD_CREDIT_BYTES)
      this.#heldCredit.push(() => onSent(n));
    else onSent(n);
  }

  #localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.#closeStream(s);
    else if (this.opts.role === 'server') {
      // RFC 9113 8.1: the response is complete (its last frame is out, not just queued); the
      // rest of the request is not wanted.
      this.#frame(FRAME.RST_STREAM, 0, s.id, u32(H2_CODE.noError));
      this.#closeStream(s);
    }
  }

  #closeStream(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    s.queue = [];
    s.queued = 0;
    this.#blocked.delete(s);
    this.streams.delete(s.id);
    if (this.streams.size === 0) {
      if (this.#goingAway) this.#endSoon();
      else this.#armIdle();
    }
  }

  #frame(type: number, flags: number, stream: number, payload: Buffer): void {
    const h = Buffer.allocUnsafe(FRAME_HEADER);
    const n = payload.length;
    h[0] = n >>> 16;
    h[1] = (n >>> 8) & 0xff;
    h[2] = n & 0xff;
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    this.#queue(h);
    if (n > 0) this.#queue(payload);
  }

  #queue(b: Buffer): void {
    if (this.#closed) return;
    this.#out.push(b);
    this.#outBytes += b.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  #flushNow(): void {
    this.#flushQueued = false;
    if (this.#closed || this.#outBytes === 0) return;
    const out = this.#out;
    const buf = out.length === 1 ? out[0]! : Buffer.concat(out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    this.socket.write(buf);
    // A peer that sends but never reads (PING or SETTINGS floods answered into a full socket).
    if (this.socket.writableLength > MAX_QUEUED_BYTES) this.destroy();
  }

  #drained(): void {
    const held = this.#heldCredit;
    if (held.length === 0) return;
    this.#heldCredit = [];
    for (const f of held) f();
  }

  #sendSettings(): void {
    const server = this.opts.role === 'server';
    const p = Buffer.allocUnsafe(6 * 5);
    let at = 0;
    const put = (id: number, v: number): void => {
      p.writeUInt16BE(id, at);
      p.writeUInt32BE(v, at + 2);
      at += 6;
    };
    put(SETTING.enablePush, 0);
    put(SETTING.maxConcurrentStreams, server ? MAX_CONCURRENT_STREAMS : 0);
    put(SETTING.initialWindowSize, STREAM_WINDOW);
    put(SETTING.maxFrameSize, H2_MAX_FRAME_SIZE);
    put(SETTING.maxHeaderListSize, MAX_HEADER_BYTES);
    this.#frame(FRAME.SETTINGS, 0, 0, p.subarray(0, at));
  }

  #queueWindowUpdate(stream: number, n: number): void {
    this.#frame(FRAME.WINDOW_UPDATE, 0, stream, u32(n));
  }

  #goaway(code: number): void {
    this.#goingAway = true;
    const p = Buffer.allocUnsafe(8);
    p.writeUInt32BE(this.opts.role === 'server' ? this.lastStreamId : 0, 0);
    p.writeUInt32BE(code, 4);
    this.#frame(FRAME.GOAWAY, 0, 0, p);
  }

  /** Ends the connection for `code` (a connection error, RFC 9113 5.4.1). */
  #fail(code: number, why: string): void {
    if (this.#closed) return;
    this.#read = ReadState.Dead;
    this.#goaway(code);
    this.#flushNow();
    this.#resetAll(code, why);
    this.socket.end();
    setTimeout(() => this.destroy(), GOAWAY_GRACE_MS).unref();
  }

  #endSoon(): void {
    this.#flushNow();
    this.socket.end();
    setTimeout(() => this.destroy(), GOAWAY_GRACE_MS).unref();
  }

  #resetAll(code: number, why: string): void {
    const open = [...this.streams.values()];
    for (const s of open) {
      this.#closeStream(s);
      s.handler?.onReset(code, why);
    }
  }

  #onClosed(): void {
    if (this.#closed) return;
    this.#read = ReadState.Dead;
    this.#resetAll(H2_CODE.cancel, 'connection closed');
    this.#closed = true;
    this.#disarmIdle();
    this.#out = [];
    this.#outBytes = 0;
    this.#heldCredit = [];
    this.opts.onClose?.();
  }

  #armIdle(): void {
    if (this.opts.idleTimeoutMs <= 0 || this.#closed) return;
    this.#disarmIdle();
    this.#idleTimer = setTimeout(() => {
      if (this.streams.size === 0) this.drain();
    }, this.opts.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #disarmIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  // ---- receiving ----

  #onData(d: Buffer): void {
    if (this.#read === ReadState.Dead) return;
    let buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, d]) : d;
    this.#pending = EMPTY;
    if (this.#read === ReadState.Preface) {
      const n = Math.min(buf.length, CLIENT_PREFACE.length);
      if (buf.compare(CLIENT_PREFACE, 0, n, 0, n) !== 0) return this.destroy();
      if (buf.length < CLIENT_PREFACE.length) {
        this.#pending = buf;
        return;
      }
      buf = buf.subarray(CLIENT_PREFACE.length);
      this.#read = ReadState.Frames;
    }
    let at = 0;
    const total = buf.length;
    while (total - at >= FRAME_HEADER) {
      const len = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
      if (len > H2_MAX_FRAME_SIZE) return this.#fail(H2_CODE.frameSize, 'frame too large');
      if (total - at < FRAME_HEADER + len) break;
      const type = buf[at + 3]!;
      const flags = buf[at + 4]!;
      const stream = buf.readUInt32BE(at + 5) & 0x7fffffff;
      const start = at + FRAME_HEADER;
      at = start + len;
      this.#onFrame(type, flags, stream, buf, start, at);
      if ((this.#read as ReadState) === ReadState.Dead) return;
    }
    if (at < total) this.#pending = at === 0 ? buf : Buffer.from(buf.subarray(at));
  }

  #onFrame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    // RFC 9113 6.10: nothing may come between the frames of one header block.
    if (this.#blockStream !== 0 && (type !== FRAME.CONTINUATION || id !== this.#blockStream))
      return this.#fail(H2_CODE.protocol, 'header block interrupted');
    switch (type) {
      case FRAME.DATA:
        return this.#onDataFrame(flags, id, buf, start, end);
      case FRAME.HEADERS:
        return this.#onHeadersFrame(flags, id, buf, start, end);
      case FRAME.CONTINUATION:
        if (this.#blockStream === 0) return this.#fail(H2_CODE.protocol, 'stray CONTINUATION');
        if (++this.#blockContinuations > MAX_CONTINUATIONS)
          return this.#fail(H2_CODE.enhanceYourCalm, 'too many CONTINUATION frames');
        return this.#addFragment(buf.subarray(start, end), flags);
      case FRAME.PRIORITY:
        if (id === 0) return this.#fail(H2_CODE.protocol, 'PRIORITY on stream 0');
        if (end - start !== 5) return this.#fail(H2_CODE.frameSize, 'PRIORITY size');
        return;
      case FRAME.RST_STREAM:
        return this.#onReset(id, buf, start, end);
      case FRAME.SETTINGS:
        return this.#onSettings(flags, id, buf, start, end);
      case FRAME.PUSH_PROMISE:
        return this.#fail(H2_CODE.protocol, 'PUSH_PROMISE (push is disabled)');
      case FRAME.PING:
        if (id !== 0) return this.#fail(H2_CODE.protocol, 'PING on a stream');
        if (end - start !== 8) return this.#fail(H2_CODE.frameSize, 'PING size');
        if ((flags & ACK) === 0)
          this.#frame(FRAME.PING, ACK, 0, Buffer.from(buf.subarray(start, end)));
        return;
      case FRAME.GOAWAY:
        return this.#onGoaway(id, buf, start, end);
      case FRAME.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, buf, start, end);
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  #onDataFrame(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) return this.#fail(H2_CODE.protocol, 'DATA on stream 0');
    const size = end - start;
    // The whole frame counts against the windows, padding included (RFC 9113 6.9.1).
    this.#recvWindow -= size;
    if (this.#recvWindow < 0) return this.#fail(H2_CODE.flowControl, 'connection window exceeded');
    if (flags & PADDED) {
      if (size < 1) return this.#fail(H2_CODE.frameSize, 'DATA padding');
      const pad = buf[start]!;
      if (pad >= size) return this.#fail(H2_CODE.protocol, 'DATA padding longer than frame');
      start += 1;
      end -= pad;
    }
    const s = this.streams.get(id);
    if (!s || s.remoteEnded) {
      // Give the bytes back: the peer's connection window must not shrink for a dead stream.
      this.#creditConnection(size);
      if (this.#isIdle(id)) return this.#fail(H2_CODE.protocol, 'DATA on an idle stream');
      // Frames in flight after a reset are dropped; DATA after END_STREAM is an error.
      if (s) return this.#streamError(s, H2_CODE.streamClosed, 'DATA after END_STREAM');
      return;
    }
    s.recvWindow -= size;
    if (s.recvWindow < 0) {
      this.#creditConnection(size);
      return this.#streamError(s, H2_CODE.flowControl, 'stream window exceeded');
    }
    // A response is a final head, then DATA (RFC 9113 8.1): DATA before it (or after a 1xx
    // only) is malformed, and would otherwise be kept and forwarded as the body of whatever
    // head came later, or leave the exchange waiting for a head that never comes.
    if (this.opts.role === 'client' && !s.headReceived) {
      this.#creditConnection(size);
      return this.#streamError(s, H2_CODE.protocol, 'DATA before the response head');
    }
    const data = buf.subarray(start, end);
    s.receivedLength += data.length;
    const ended = (flags & END_STREAM) !== 0;
    if (s.expectedLength >= 0) {
      if (s.receivedLength > s.expectedLength || (ended && s.receivedLength !== s.expectedLength)) {
        this.#creditConnection(size);
        return this.#streamError(s, H2_CODE.protocol, 'body length differs from content-length');
      }
    }
    // Padding is never forwarded: it is given back at once.
    const padding = size - data.length;
    if (padding > 0) this.credit(s, padding);
    if (ended) this.#remoteEnd(s);
    s.handler?.onData(data, ended);
  }

  /** A stream in state idle (RFC 9113 5.1): never opened by either side. */
  #isIdle(id: number): boolean {
    // Clients open odd streams (lastStreamId: the highest opened); push is off, so no peer
    // may open an even one.
    return id % 2 === 0 || id > this.lastStreamId;
  }

  #onHeadersFrame(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) return this.#fail(H2_CODE.protocol, 'HEADERS on stream 0');
    if (flags & PADDED) {
      if (end - start < 1) return this.#fail(H2_CODE.frameSize, 'HEADERS padding');
      const pad = buf[start]!;
      start += 1;
      if (pad > end - start) return this.#fail(H2_CODE.protocol, 'HEADERS padding too long');
      end -= pad;
    }
    if (flags & PRIORITY_FLAG) {
      if (end - start < 5) return this.#fail(H2_CODE.frameSize, 'HEADERS priority');
      start += 5;
    }
    this.#blockStream = id;
    this.#blockFlags = flags;
    this.#blockParts = [];
    this.#blockBytes = 0;
    this.#blockContinuations = 0;
    this.#addFragment(buf.subarray(start, end), flags);
  }

  #addFragment(fragment: Buffer, flags: number): void {
    this.#blockBytes += fragment.length;
    if (this.#blockBytes > H2_MAX_HEADER_BLOCK_BYTES)
      return this.#fail(H2_CODE.enhanceYourCalm, 'header block too large');
    this.#blockParts.push(fragment);
    if ((flags & END_HEADERS) === 0) return;
    const parts = this.#blockParts;
    const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#blockBytes);
    const id = this.#blockStream;
    const blockFlags = this.#blockFlags;
    this.#blockStream = 0;
    this.#blockParts = [];
    this.#blockBytes = 0;
    this.#onBlock(id, blockFlags, block);
  }

  /** A complete header block: decoded (always: the HPACK table must stay in step), judged, delivered. */
  #onBlock(id: number, flags: number, block: Buffer): void {
    const fields: string[] = [];
    let bad: string | undefined;
    let listSize = 0;
    const err = this.#decoder.decode(block, (name, value, entry) => {
      listSize += name.length + value.length + 32;
      if (bad !== undefined) return;
      // A field sent as an index was converted and judged when first seen.
      const memo = entry?.memo;
      if (memo !== undefined) {
        if (!memo.valid) bad = 'malformed header field';
        else fields.push(memo.name, memo.value);
        return;
      }
      const valid = isValidField(name, value);
      const n = name.toString('latin1');
      const v = value.toString('latin1');
      if (entry !== undefined) entry.memo = { name: n, value: v, valid };
      if (!valid) bad = 'malformed header field';
      else fields.push(n, v);
    });
    if (err !== undefined) return this.#fail(H2_CODE.compression, err);
    if (bad === undefined && (listSize > MAX_HEADER_BYTES || fields.length > 2 * MAX_HEADER_COUNT))
      bad = 'header list too large';
    const end = (flags & END_STREAM) !== 0;
    const s = this.streams.get(id);
    if (this.opts.role === 'server') {
      if (s) return this.#onTrailers(s, fields, end, bad);
      if (id % 2 === 1 && id > this.lastStreamId) return this.#onRequestHead(id, fields, end, bad);
      if (id % 2 === 0) return this.#fail(H2_CODE.protocol, 'HEADERS on an even stream');
      return; // trailers of a stream already reset: decoded (the table), dropped
    }
    if (!s) {
      if (this.#isIdle(id)) return this.#fail(H2_CODE.protocol, 'HEADERS on a stream never opened');
      return;
    }
    if (s.remoteEnded) return this.#streamError(s, H2_CODE.streamClosed, 'HEADERS after end');
    if (bad !== undefined) return this.#streamError(s, H2_CODE.protocol, bad);
    if (!s.headReceived) return this.#onResponseHead(s, fields, end);
    return this.#onTrailers(s, fields, end, bad);
  }

  #onRequestHead(id: number, fields: string[], end: boolean, bad: string | undefined): void {
    this.lastStreamId = id;
    if (this.#goingAway) return;
    const s = new H2Stream(this, id, this.#peerInitialWindow);
    if (bad === undefined) bad = requestRule(fields, s);
    if (bad !== undefined) {
      this.#frame(FRAME.RST_STREAM, 0, id, u32(H2_CODE.protocol));
      this.opts.onRefusedStream?.(fields, bad);
      return this.#countInvalid();
    }
    if (this.streams.size >= MAX_CONCURRENT_STREAMS) {
      this.#frame(FRAME.RST_STREAM, 0, id, u32(H2_CODE.refusedStream));
      if (++this.#refused > MAX_REFUSED_STREAMS)
        this.#fail(H2_CODE.enhanceYourCalm, 'too many streams refused');
      return;
    }
    this.streams.set(id, s);
    this.#disarmIdle();
    if (end) s.remoteEnded = true;
    if (end && s.expectedLength > 0)
      return this.#streamError(s, H2_CODE.protocol, 'body length differs from content-length');
    this.opts.onStream?.(s, fields, end);
    if (!s.handler && !s.closed) this.resetStream(s, H2_CODE.refusedStream);
  }

  #onResponseHead(s: H2Stream, fields: string[], end: boolean): void {
    const status = responseRule(fields);
    if (status === undefined)
      return this.#streamError(s, H2_CODE.protocol, 'malformed response head');
    // 1xx interim answers are not forwarded (no request through the proxy waits on 100).
    if (status < 200) {
      if (end) return this.#streamError(s, H2_CODE.protocol, 'interim response ends stream');
      return;
    }
    s.headReceived = true;
    if (end) this.#remoteEnd(s);
    s.handler?.onHeaders(fields, end);
  }

  #onTrailers(s: H2Stream, fields: string[], end: boolean, bad: string | undefined): void {
    if (s.remoteEnded) return this.#streamError(s, H2_CODE.streamClosed, 'HEADERS after end');
    if (!end) return this.#streamError(s, H2_CODE.protocol, 'trailers without END_STREAM');
    if (bad !== undefined) return this.#streamError(s, H2_CODE.protocol, bad);
    for (let i = 0; i < fields.length; i += 2)
      if (fields[i]!.charCodeAt(0) === 58)
        return this.#streamError(s, H2_CODE.protocol, 'pseudo-header in trailers');
    if (s.expectedLength >= 0 && s.receivedLength !== s.expectedLength)
      return this.#streamError(s, H2_CODE.protocol, 'body length differs from content-length');
    this.#remoteEnd(s);
    s.handler?.onHeaders(fields, true);
  }

  #remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    if (s.localEnded) this.#closeStream(s);
  }

  #onReset(id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) return this.#fail(H2_CODE.protocol, 'RST_STREAM on stream 0');
    if (end - start !== 4) return this.#fail(H2_CODE.frameSize, 'RST_STREAM size');
    if (this.#isIdle(id)) return this.#fail(H2_CODE.protocol, 'RST_STREAM on an idle stream');
    const s = this.streams.get(id);
    if (!s) return;
    const code = buf.readUInt32BE(start);
    this.#closeStream(s);
    if (this.opts.role === 'server' && !this.#spendReset()) {
      s.handler?.onReset(code, 'reset by peer');
      return this.#fail(H2_CODE.enhanceYourCalm, 'too many stream resets');
    }
    s.handler?.onReset(code, 'reset by peer');
  }

  /** Takes one token from the reset bucket; false when it is empty. */
  #spendReset(): boolean {
    const now = performance.now();
    this.#resetTokens = Math.min(
      RESET_BURST,
      this.#resetTokens + ((now - this.#resetAt) / 1000) * RESETS_PER_SECOND,
    );
    this.#resetAt = now;
    return --this.#resetTokens >= 0;
  }

  #onSettings(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) return this.#fail(H2_CODE.protocol, 'SETTINGS on a stream');
    if (flags & ACK) {
      if (end !== start) return this.#fail(H2_CODE.frameSize, 'SETTINGS ACK with payload');
      return;
    }
    if ((end - start) % 6 !== 0) return this.#fail(H2_CODE.frameSize, 'SETTINGS size');
    for (let at = start; at < end; at += 6) {
      const key = buf.readUInt16BE(at);
      const v = buf.readUInt32BE(at + 2);
      switch (key) {
        case SETTING.enablePush:
          if (v > 1) return this.#fail(H2_CODE.protocol, 'ENABLE_PUSH');
          if (v === 1 && this.opts.role === 'client')
            return this.#fail(H2_CODE.protocol, 'ENABLE_PUSH from a server');
          break;
        case SETTING.maxConcurrentStreams:
          this.#peerMaxStreams = v;
          break;
        case SETTING.initialWindowSize: {
          if (v > MAX_WINDOW) return this.#fail(H2_CODE.flowControl, 'INITIAL_WINDOW_SIZE');
          const delta = v - this.#peerInitialWindow;
          this.#peerInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW)
              return this.#fail(H2_CODE.flowControl, 'window overflow');
          }
          if (delta > 0) for (const s of [...this.#blocked]) this.#pump(s);
          break;
        }
        case SETTING.maxFrameSize:
          if (v < 16_384 || v > 16_777_215) return this.#fail(H2_CODE.protocol, 'MAX_FRAME_SIZE');
          this.#peerMaxFrame = Math.min(v, H2_MAX_FRAME_SIZE);
          break;
        default:
          break; // HEADER_TABLE_SIZE needs nothing (no dynamic table is used); others ignored
      }
    }
    this.#frame(FRAME.SETTINGS, ACK, 0, EMPTY);
  }

  #onGoaway(id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) return this.#fail(H2_CODE.protocol, 'GOAWAY on a stream');
    if (end - start < 8) return this.#fail(H2_CODE.frameSize, 'GOAWAY size');
    const last = buf.readUInt32BE(start) & 0x7fffffff;
    const code = buf.readUInt32BE(start + 4);
    this.#goingAway = true;
    if (this.opts.role === 'client') {
      // Streams the peer never processed: told as refused, so they may go elsewhere.
      for (const s of [...this.streams.values()])
        if (s.id > last) {
          this.#closeStream(s);
          s.handler?.onReset(H2_CODE.refusedStream, 'GOAWAY: not processed');
        }
    }
    this.opts.onGoaway?.(last, code);
    if (this.streams.size === 0) this.#endSoon();
  }

  #onWindowUpdate(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) return this.#fail(H2_CODE.frameSize, 'WINDOW_UPDATE size');
    const n = buf.readUInt32BE(start) & 0x7fffffff;
    if (id === 0) {
      if (n === 0) return this.#fail(H2_CODE.protocol, 'WINDOW_UPDATE of 0');
      this.#sendWindow += n;
      if (this.#sendWindow > MAX_WINDOW) return this.#fail(H2_CODE.flowControl, 'window overflow');
      for (const s of [...this.#blocked]) {
        this.#pump(s);
        if (this.#sendWindow <= 0) break;
      }
      return;
    }
    const s = this.streams.get(id);
    if (!s) {
      if (this.#isIdle(id)) return this.#fail(H2_CODE.protocol, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (n === 0) return this.#streamError(s, H2_CODE.protocol, 'WINDOW_UPDATE of 0');
    s.sendWindow += n;
    if (s.sendWindow > MAX_WINDOW)
      return this.#streamError(s, H2_CODE.flowControl, 'window overflow');
    if (s.queued > 0 || s.queuedEnd) this.#pump(s);
  }

  /** Resets `s` for a stream error and tells its handler. */
  #streamError(s: H2Stream, code: number, why: string): void {
    this.resetStream(s, code);
    s.handler?.onReset(code, why);
    this.#countInvalid();
  }

  #countInvalid(): void {
    if (++this.#invalid > MAX_INVALID_FRAMES)
      this.#fail(H2_CODE.enhanceYourCalm, 'too many invalid frames');
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** Fields HTTP/2 forbids (RFC 9113 8.2.2): connection-specific. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The rules of a request head (RFC 9113 8.3): the pseudo-headers a request has, once each,
 * before every other field; no connection-specific field; TE only "trailers"; one
 * content-length (recorded on `s` for the body check). Returns why it is malformed, or
 * undefined.
 */
function requestRule(fields: readonly string[], s: H2Stream): string | undefined {
  let method: string | undefined;
  let scheme = false;
  let path = false;
  let authority = false;
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.charCodeAt(0) === 58) {
      if (regular) return 'pseudo-header after a regular field';
      switch (name) {
        case ':method':
          if (method !== undefined) return 'duplicate :method';
          method = value;
          break;
        case ':scheme':
          if (scheme) return 'duplicate :scheme';
          scheme = true;
          break;
        case ':path':
          if (path) return 'duplicate :path';
          if (value === '') return 'empty :path';
          path = true;
          break;
        case ':authority':
          if (authority) return 'duplicate :authority';
          authority = true;
          break;
        default:
          return `unknown pseudo-header ${name}`;
      }
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te' && value !== 'trailers') return 'TE other than trailers';
    if (name === 'content-length') {
      if (!/^[0-9]{1,15}$/.test(value)) return 'invalid content-length';
      const n = Number(value);
      if (s.expectedLength >= 0 && s.expectedLength !== n) return 'conflicting content-length';
      s.expectedLength = n;
    }
  }
  if (method === undefined) return 'missing :method';
  if (method === 'CONNECT') {
    if (scheme || path || !authority) return 'malformed CONNECT';
    return undefined;
  }
  if (!scheme || !path) return 'missing :scheme or :path';
  return undefined;
}

/** A response head's :status (RFC 9113 8.3.2), or undefined when it is malformed. */
function responseRule(fields: readonly string[]): number | undefined {
  let status: number | undefined;
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.charCodeAt(0) === 58) {
      if (regular || name !== ':status' || status !== undefined) return undefined;
      const v = fields[i + 1]!;
      if (!/^[1-9][0-9]{2}$/.test(v)) return undefined;
      status = Number(v);
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name)) return undefined;
  }
  return status;
}
