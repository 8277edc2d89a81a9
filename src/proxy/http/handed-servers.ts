/**
 * The HTTP/1.1 and HTTP/2 servers of one side of a proxy. They never listen: the proxy hands
 * them connections it accepted (after mTLS on the public listener, after sniffing on an
 * upstream listener), each with a context (who the caller is, which upstream it is for) that
 * every request on that connection is handled with.
 */
import {
  createServer as createH2Server,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { REASON, type Reason } from '../reasons.js';
import { fromHttp1, fromHttp2, type Downstream } from './downstream.js';
import { createHttp1Server, type Http1Front } from './http1-server.js';
import { H2Screening } from './h2-screening.js';
import { H1Front } from './h1-front.js';
import { H2_SERVER_LIMITS, HTTP1_SERVER_LIMITS } from './limits.js';
import { guardResets } from './reset-guard.js';

/** What is known of an HTTP/2 request refused for its header fields. */
export interface RefusedHead {
  method: string;
  path: string;
}

export interface HandedServerOptions<C> {
  idleTimeoutMs: number;
  /** Time a client has to send a request head (slowloris). */
  headersTimeoutMs: number;
  /** HTTP/1.1 requests without Host are refused (the public side) or accepted. */
  requireHostHeader: boolean;
  /**
   * A request the server refused before handling it: HTTP/1.1 parse errors, tunnels and
   * timeouts (no head), HTTP/2 streams whose header fields are malformed (`head` given).
   */
  onRefused(ctx: C, status: number, reason: Reason, head?: RefusedHead): void;
}

/**
 * How a connection is served: `h2` (node:http2, read through the header screen), `spliced`
 * (the proxy's own HTTP/1.1 front, bodies moved as bytes) or `translated` (node:http, for
 * HTTP/1.1 callers of an HTTP/2 application).
 */
export type Served = 'h2' | 'spliced' | 'translated';

export class HandedHttpServers<C> {
  readonly #h1: Http1Front;
  readonly #front: H1Front<C>;
  readonly #h2: Http2Server;
  readonly #context = new WeakMap<object, C>();
  readonly #sessions = new Set<Http2Session>();
  /** The connection being handed to the HTTP/2 server right now. */
  #handing: { ctx: C; screening: H2Screening } | undefined;

  constructor(handle: (down: Downstream, ctx: C) => void, opts: HandedServerOptions<C>) {
    this.#front = new H1Front(handle, {
      requireHost: opts.requireHostHeader,
      headersTimeoutMs: opts.headersTimeoutMs,
      keepAliveMs: HTTP1_SERVER_LIMITS.keepAliveTimeout ?? 60_000,
      requestTimeoutMs: HTTP1_SERVER_LIMITS.requestTimeout ?? 300_000,
      idleTimeoutMs: opts.idleTimeoutMs,
      onRefused: (ctx, status, reason) => opts.onRefused(ctx, status, reason),
    });
    this.#h1 = createHttp1Server(
      (req, res) => {
        const ctx = this.#context.get(req.socket);
        if (ctx !== undefined) handle(fromHttp1(req, res), ctx);
        else res.destroy();
      },
      { headersTimeout: opts.headersTimeoutMs, requireHostHeader: opts.requireHostHeader },
      (socket, status, reason) => {
        const ctx = this.#context.get(socket);
        if (ctx !== undefined) opts.onRefused(ctx, status, reason);
      },
    );
    this.#h2 = createH2Server(H2_SERVER_LIMITS);
    this.#h2.on('session', (session: Http2Session) => {
      const handing = this.#handing;
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', () => session.destroy());
      if (handing === undefined) return void session.destroy();
      const { ctx, screening } = handing;
      screening.attach(session);
      session.setTimeout(opts.idleTimeoutMs, () => session.close());
      // The session's own 'stream' event, not the server's: nghttp2 reads the screened socket
      // from JavaScript, so the events of a whole read arrive after it, when a stream the
      // client has already reset no longer knows its session.
      session.on(
        'stream',
        (
          stream: ServerHttp2Stream,
          headers: IncomingHttpHeaders,
          _flags: number,
          rawHeaders: string[],
        ) => {
          stream.on('error', () => stream.destroy());
          guardResets(stream, session);
          if (!screening.admit(stream))
            return opts.onRefused(ctx, 400, REASON.badRequest, {
              method: String(headers[':method'] ?? '-'),
              path: String(headers[':path'] ?? '-'),
            });
          // Reset by the client within the same read: nothing to handle (rapid reset).
          if (stream.destroyed) return;
          handle(fromHttp2(stream, headers, rawHeaders), ctx);
        },
      );
    });
  }

  /** Serves `socket` as `how` says; every request on it is handled with `ctx`. */
  accept(socket: Socket, ctx: C, how: Served): void {
    if (how === 'spliced') return this.#front.accept(socket, ctx);
    if (how === 'translated') {
      this.#context.set(socket, ctx);
      this.#h1.accept(socket);
      return;
    }
    // nghttp2 reads the socket through the header screen. The server makes the session
    // synchronously inside emit(), which is when it is tagged.
    const screening = new H2Screening(socket);
    this.#handing = { ctx, screening };
    try {
      this.#h2.emit('connection', screening.socket);
    } finally {
      this.#handing = undefined;
    }
  }

  close(): void {
    this.#front.close();
    for (const s of this.#sessions) s.destroy();
    this.#h1.server.closeAllConnections();
    this.#h1.server.close(() => {}); // stops the timeout checks (it never listened)
  }
}
