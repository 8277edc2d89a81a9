/**
 * One request as the proxy received it, whatever the HTTP version: the head, the body, and the
 * ways to answer it. The proxy's own fronts (H1Exchange, H2Exchange) implement it, and node:http
 * requests have an adapter here, so authorization, forwarding and accounting are written once.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { Reason } from '../reasons.js';
import type { H1Exchange } from './h1-front.js';
import type { H2Exchange } from './h2-front.js';
import { REASON_HEADER, endToEnd, isGrpc } from './headers.js';

interface ResponseBase {
  status: number;
  headers: IncomingHttpHeaders;
  /** The x-trellis-reason an upstream proxy answered with, if any. */
  proxyReason: string | undefined;
  /** Removes x-trellis-reason (an application cannot speak for the proxies). */
  dropProxyReason(): void;
  /** The response is not relayed (the request goes elsewhere): its body is thrown away. */
  discard(): void;
}

/** A response whose body is a stream (node:http and node:http2 targets). */
export interface StreamResponse extends ResponseBase {
  body: Readable;
  /** The trailers, once the body has ended (HTTP/2 only). */
  trailers(): IncomingHttpHeaders | undefined;
  /** The head ended the stream: no body, no trailers (a gRPC "trailers-only" answer). */
  headOnly: boolean;
}

/** A response whose bytes are spliced into the proxy's own HTTP/1.1 front (h1-pool.ts). */
export interface SplicedResponse extends ResponseBase {
  spliceInto(ex: H1Exchange): void;
}

/** A response on an HTTP/2 stream of the proxy's own (h2-pool.ts), linked frame by frame. */
export interface LinkedResponse extends ResponseBase {
  linkInto(ex: H2Exchange): void;
}

/** A response coming back from wherever the request was sent. */
export type UpstreamResponse = StreamResponse | SplicedResponse | LinkedResponse;

export const isSpliced = (r: UpstreamResponse): r is SplicedResponse => 'spliceInto' in r;
export const isLinked = (r: UpstreamResponse): r is LinkedResponse => 'linkInto' in r;
/** A response whose body is a node stream. */
export const isStream = (r: UpstreamResponse): r is StreamResponse => 'body' in r;

/** A StreamResponse's own methods, from its headers and body. */
export function streamResponse(
  status: number,
  headers: IncomingHttpHeaders,
  body: Readable,
  trailers: () => IncomingHttpHeaders | undefined,
  headOnly: boolean,
): StreamResponse {
  const r = headers[REASON_HEADER];
  return {
    status,
    headers,
    body,
    trailers,
    headOnly,
    proxyReason: typeof r === 'string' ? r : undefined,
    dropProxyReason() {
      delete headers[REASON_HEADER];
      this.proxyReason = undefined;
    },
    discard: () => void body.resume(),
  };
}

export interface Downstream {
  readonly version: '1.1' | '2';
  readonly method: string;
  /** The request target: path and query. */
  readonly target: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  /** Every header field line as received: name, value, name, value, ... */
  readonly rawHeaders: readonly string[];
  readonly grpc: boolean;
  /** Whether a body follows the head (false: Content-Length 0 or none, or END_STREAM). */
  readonly hasBody: boolean;
  /** Streams the request body to `w` (counting it); call once, when `w` can take it. */
  sendBodyTo(w: Writable): void;
  /** Sends a response from upstream back, trailers included when both sides can carry them. */
  relay(res: UpstreamResponse): void;
  /** Answers the request itself, marked with its reason code (a gRPC status for gRPC calls). */
  refuse(status: number, reason: Reason, message: string): void;
  /**
   * Refuses a malformed request: HTTP/1.1 answers 400; HTTP/2 resets the stream with
   * PROTOCOL_ERROR (RFC 9113 8.1.1), so nothing of it is forwarded.
   */
  malformed(reason: Reason, message: string): void;
  /** Ends the exchange abruptly (the response had started when the upstream failed). */
  abort(): void;
  readonly responded: boolean;
  /** Called once the exchange is over: completed, refused, aborted or the client went away. */
  onDone(fn: (completed: boolean) => void): void;
  /** Body bytes received from the client and sent to it so far. */
  bytesIn(): number;
  bytesOut(): number;
}

/** HTTP status -> gRPC status code for answers the proxy makes to gRPC calls (gRPC's table). */
export function grpcStatusFor(status: number): number {
  if (status === 403) return 7; // PERMISSION_DENIED
  if (status === 400) return 13; // INTERNAL
  if (status === 408 || status === 504) return 4; // DEADLINE_EXCEEDED
  return 14; // UNAVAILABLE
}

/** Pipes `body` into `w`, adding its size to `c.n`; attached only when piping starts. */
function pipeCounted(body: Readable, w: Writable, c: { n: number }): void {
  // A retry after an empty body was already consumed: there is nothing left to send.
  if (body.readableEnded) return void w.end();
  body.on('data', (d: Buffer) => {
    c.n += d.length;
  });
  body.pipe(w);
}

/** The onDone listeners of one exchange: each told once, whichever end comes first. */
function doneListeners(): { add(fn: (completed: boolean) => void): void; fire(c: boolean): void } {
  const fns: ((completed: boolean) => void)[] = [];
  let fired = false;
  return {
    add: (fn) => void fns.push(fn),
    fire(completed) {
      if (fired) return;
      fired = true;
      for (const f of fns) f(completed);
    },
  };
}

export function fromHttp1(req: IncomingMessage, res: ServerResponse): Downstream {
  const rx = { n: 0 };
  let tx = 0;
  const done = doneListeners();
  res.once('finish', () => done.fire(true));
  res.once('close', () => done.fire(false));
  return {
    version: '1.1',
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    authority: req.headers.host ?? '',
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    // RFC 9112 6.3: a request has a body only when Content-Length or Transfer-Encoding says so.
    hasBody:
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'),
    sendBodyTo: (w) => pipeCounted(req, w, rx),
    grpc: isGrpc(req.headers),
    get responded() {
      return res.headersSent;
    },
    relay(up) {
      // Spliced and linked responses answer only the proxy's own fronts.
      if (!isStream(up)) return void res.destroy();
      res.writeHead(up.status, endToEnd(up.headers, { dropIdentity: false }));
      up.body.on('data', (d: Buffer) => {
        tx += d.length;
      });
      up.body.pipe(res);
    },
    refuse(status, reason, message) {
      const body = `${message}\n`;
      tx += Buffer.byteLength(body);
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        [REASON_HEADER]: reason,
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    },
    malformed(reason, message) {
      this.refuse(400, reason, message);
    },
    abort() {
      res.destroy();
    },
    onDone: done.add,
    bytesIn: () => rx.n,
    bytesOut: () => tx,
  };
}
