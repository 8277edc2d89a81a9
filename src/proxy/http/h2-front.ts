/**
 * The proxy's own HTTP/2 server side: connections read by H2Conn (h2-conn.ts) rather than
 * nghttp2, each request stream an H2Exchange, the Downstream every HTTP path of the proxy
 * handles. When the request goes to an HTTP/2 peer through the frame pool (h2-pool.ts), the
 * two streams are linked: DATA payloads and trailers are forwarded as they arrive and flow
 * control is passed through (a byte is given back to the sender once it left towards the
 * receiver). Requests for an HTTP/1.1 application take the stream adapters (sendBodyTo,
 * relay of a StreamResponse) instead.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { REASON, type Reason } from '../reasons.js';
import { REPLAY_LIMIT } from './body-replay.js';
import {
  grpcStatusFor,
  isLinked,
  isSpliced,
  type Downstream,
  type LinkedResponse,
  type StreamResponse,
  type UpstreamResponse,
} from './downstream.js';
import { H2Conn, H2_CODE, type H2Stream, type StreamHandler } from './h2-conn.js';
import { HOP_BY_HOP, REASON_HEADER, endToEnd, isGrpc } from './headers.js';

export interface H2FrontOptions<C> {
  idleTimeoutMs: number;
  /** A stream refused for its header fields (reset with PROTOCOL_ERROR, never handled). */
  onRefused(ctx: C, status: number, reason: Reason, head: { method: string; path: string }): void;
}

const EMPTY = Buffer.alloc(0);
/** Response bytes queued on a stream past which a stream-body source is paused. */
const QUEUE_HIGH = 256 * 1024;

export class H2Front<C> {
  readonly #conns = new Set<H2Conn>();

  constructor(
    private readonly handle: (down: Downstream, ctx: C) => void,
    private readonly opts: H2FrontOptions<C>,
  ) {}

  accept(socket: Socket, ctx: C): void {
    const conn: H2Conn = new H2Conn(socket, {
      role: 'server',
      idleTimeoutMs: this.opts.idleTimeoutMs,
      prefaceTimeoutMs: 10_000,
      onStream: (s, fields, end) => this.handle(new H2Exchange(s, fields, end), ctx),
      onRefusedStream: (fields) =>
        this.opts.onRefused(ctx, 400, REASON.badRequest, {
          method: fieldOf(fields, ':method') ?? '-',
          path: fieldOf(fields, ':path') ?? '-',
        }),
      onClose: () => this.#conns.delete(conn),
    });
    this.#conns.add(conn);
  }

  close(): void {
    for (const c of [...this.#conns]) c.destroy();
  }

  /** GOAWAY on every connection: no new streams; each closes once its open streams end. */
  drain(): void {
    for (const c of [...this.#conns]) c.drain();
  }
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** Node's shape of a header list: repeated fields joined (cookies with "; "), set-cookie a list. */
export function headersObject(fields: readonly string[]): IncomingHttpHeaders {
  const h: IncomingHttpHeaders = {};
  for (let i = 0; i < fields.length; i += 2) {
    const k = fields[i]!;
    const v = fields[i + 1]!;
    const prev = h[k];
    if (prev === undefined) h[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(prev)) prev.push(v);
    else h[k] = `${prev}${k === 'cookie' ? '; ' : ', '}${v}`;
  }
  return h;
}

/** Where a request body goes: a linked upstream stream, or a Writable. */
type BodySink = { kind: 'stream'; up: H2Stream } | { kind: 'writable'; w: Writable };

export class H2Exchange implements Downstream, StreamHandler {
  readonly version = '2' as const;
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly grpc: boolean;
  readonly hasBody: boolean;
  #sink: BodySink | undefined;
  /** Body bytes and end that arrived before a sink was given. */
  #held: Buffer[] = [];
  #heldEnd: boolean;
  #heldTrailers: string[] | undefined;
  /** The body so far, for a resend elsewhere (dropped past REPLAY_LIMIT). */
  #replay: Buffer[] | undefined = [];
  #replayBytes = 0;
  /** Received body bytes not yet given back to the client. */
  #uncredited = 0;
  #rx = 0;
  #tx = 0;
  #responded = false;
  #over = false;
  #done: ((completed: boolean) => void)[] = [];
  /** The upstream stream or request answering this one: ended if the client goes away. */
  #onGone: (() => void) | undefined;
  readonly #creditBack = (n: number): void => {
    const c = n < this.#uncredited ? n : this.#uncredited;
    if (c === 0) return;
    this.#uncredited -= c;
    this.stream.credit(c);
  };

  constructor(
    readonly stream: H2Stream,
    fields: string[],
    end: boolean,
  ) {
    stream.handler = this;
    this.rawHeaders = fields;
    this.headers = headersObject(fields);
    this.method = String(this.headers[':method'] ?? 'GET');
    this.target = String(this.headers[':path'] ?? '');
    const a = this.headers[':authority'] ?? this.headers.host;
    this.authority = typeof a === 'string' ? a : '';
    this.grpc = isGrpc(this.headers);
    this.hasBody = !end;
    this.#heldEnd = end;
  }

  get responded(): boolean {
    return this.#responded;
  }

  /** The body can be sent again (nothing of it was dropped). */
  get replayable(): boolean {
    return this.#replay !== undefined;
  }

  // ---- the client's stream ----

  onHeaders(fields: string[]): void {
    // Request trailers (the only header block after the head on a server stream).
    const sink = this.#sink;
    if (sink === undefined) {
      this.#heldTrailers = fields;
      this.#heldEnd = true;
      return;
    }
    if (sink.kind === 'stream') sink.up.trailers(fields);
    else sink.w.end();
  }

  onData(data: Buffer, end: boolean): void {
    const n = data.length;
    this.#rx += n;
    this.#uncredited += n;
    if (this.#replay !== undefined && n > 0) {
      this.#replayBytes += n;
      if (this.#replayBytes <= REPLAY_LIMIT) this.#replay.push(data);
      else this.#replay = undefined;
    }
    const sink = this.#sink;
    if (sink === undefined) {
      if (n > 0) this.#held.push(data);
      if (end) this.#heldEnd = true;
      return;
    }
    if (sink.kind === 'stream') return sink.up.data(data, end);
    this.#toWritable(sink.w, data, end);
  }

  onReset(): void {
    const gone = this.#onGone;
    this.#onGone = undefined;
    gone?.();
    this.#finish(false);
  }

  // ---- the request body, to wherever the request went ----

  /**
   * Links the body to `up`, a stream on an upstream connection: what arrived so far (or, on a
   * resend, the kept copy) first, then DATA as it comes; bytes are given back to the client as
   * they leave towards `up`.
   */
  linkBody(up: H2Stream, onGone: () => void): void {
    const resend = this.#sink !== undefined;
    this.#sink = { kind: 'stream', up };
    this.#onGone = onGone;
    up.onSent = this.#creditBack;
    const pieces = resend ? (this.#replay ?? []) : this.#held;
    this.#held = [];
    const ended = resend ? this.stream.remoteEnded : this.#heldEnd;
    const trailers = this.#heldTrailers;
    for (let i = 0; i < pieces.length; i++)
      up.data(pieces[i]!, ended && trailers === undefined && i === pieces.length - 1);
    if (ended) {
      if (trailers) up.trailers(trailers);
      else if (pieces.length === 0) up.data(EMPTY, true);
    }
  }

  sendBodyTo(w: Writable): void {
    const resend = this.#sink !== undefined;
    this.#sink = { kind: 'writable', w };
    const pieces = resend ? (this.#replay ?? []) : this.#held;
    this.#held = [];
    const ended = resend ? this.stream.remoteEnded : this.#heldEnd;
    for (const p of pieces) this.#toWritable(w, p, false);
    if (ended) w.end();
  }

  #toWritable(w: Writable, data: Buffer, end: boolean): void {
    if (data.length > 0) {
      const n = data.length;
      if (w.write(data)) this.#creditBack(n);
      else w.once('drain', () => this.#creditBack(n));
    }
    if (end) w.end();
  }

  /** The upstream request for this exchange: ended if the client goes away first. */
  attach(onGone: () => void): void {
    this.#onGone = onGone;
  }

  // ---- the response ----

  relay(res: UpstreamResponse): void {
    if (this.#over || this.stream.closed) return;
    if (isLinked(res)) return res.linkInto(this);
    if (isSpliced(res)) return this.abort();
    this.#relayStream(res);
  }

  /** Sends a response head (`:status` first, then `fields`); `end` ends the stream. */
  respond(status: number, fields: readonly string[], end: boolean): void {
    this.#responded = true;
    const out = [':status', String(status)];
    for (let i = 0; i < fields.length; i += 2) out.push(fields[i]!, fields[i + 1]!);
    this.stream.headers(out, end);
    if (end) this.#finish(true);
  }

  /** Response body bytes from a linked upstream stream; `source` gets them back once sent. */
  responseData(data: Buffer, end: boolean): void {
    this.#tx += data.length;
    this.stream.data(data, end);
    if (end) this.#finish(true);
  }

  responseTrailers(fields: readonly string[]): void {
    this.stream.trailers(fields);
    this.#finish(true);
  }

  #relayStream(res: StreamResponse): void {
    const out = toFields(endToEnd(res.headers, { dropIdentity: false }));
    if (res.headOnly) {
      this.respond(res.status, out, true);
      res.body.resume();
      return;
    }
    this.respond(res.status, out, false);
    const s = this.stream;
    const body = res.body;
    s.handler = {
      onHeaders: (f) => this.onHeaders(f),
      onData: (d, e) => this.onData(d, e),
      onReset: () => {
        body.destroy();
        this.onReset();
      },
      onDrain: () => {
        if (s.queued < QUEUE_HIGH) body.resume();
      },
    };
    body.on('data', (d: Buffer) => {
      this.#tx += d.length;
      s.data(d, false);
      if (s.queued >= QUEUE_HIGH) body.pause();
    });
    body.once('end', () => {
      const t = res.trailers();
      if (t) this.responseTrailers(toFields(endToEnd(t, { dropIdentity: false })));
      else this.responseData(EMPTY, true);
    });
    body.once('error', () => this.abort());
  }

  refuse(status: number, reason: Reason, message: string): void {
    if (this.#over || this.stream.closed) return;
    if (this.#responded) return this.abort();
    if (this.grpc) {
      // Trailers-only response: a gRPC client reads the status from grpc-status.
      this.respond(
        200,
        [
          'content-type',
          'application/grpc',
          'grpc-status',
          String(grpcStatusFor(status)),
          'grpc-message',
          encodeURIComponent(message),
          REASON_HEADER,
          reason,
        ],
        true,
      );
      return;
    }
    const body = Buffer.from(`${message}\n`, 'utf8');
    this.respond(
      status,
      [
        'content-type',
        'text/plain; charset=utf-8',
        REASON_HEADER,
        reason,
        'content-length',
        String(body.length),
      ],
      false,
    );
    this.responseData(body, true);
  }

  malformed(): void {
    if (this.#over) return;
    this.stream.reset(H2_CODE.protocol);
    this.#finish(false);
  }

  abort(): void {
    if (this.#over) return;
    this.stream.reset(H2_CODE.internal);
    const gone = this.#onGone;
    this.#onGone = undefined;
    gone?.();
    this.#finish(false);
  }

  #finish(completed: boolean): void {
    if (this.#over) return;
    this.#over = true;
    this.#onGone = undefined;
    const done = this.#done;
    this.#done = [];
    for (const f of done) f(completed);
  }

  onDone(fn: (completed: boolean) => void): void {
    this.#done.push(fn);
  }

  bytesIn(): number {
    return this.#rx;
  }

  bytesOut(): number {
    return this.#tx;
  }
}

/** A header object as a field list (names lower case; hop-by-hop fields never pass). */
export function toFields(h: OutgoingHttpHeaders): string[] {
  const out: string[] = [];
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (HOP_BY_HOP.has(name) && !(name === 'te' && v === 'trailers')) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}

/** The field list of a linked response minus what `drop` names. */
export function withoutField(fields: readonly string[], drop: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2)
    if (fields[i] !== drop) out.push(fields[i]!, fields[i + 1]!);
  return out;
}

export type { LinkedResponse };
