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
import type { Reason } from '../reasons.js';
import { fromHttp1, fromHttp2, type Downstream } from './downstream.js';
import { createHttp1Server, type Http1Front } from './http1-server.js';
import { H2_SERVER_LIMITS } from './limits.js';
import { guardResets } from './reset-guard.js';

export interface HandedServerOptions<C> {
  idleTimeoutMs: number;
  /** Time a client has to send a request head (slowloris). */
  headersTimeoutMs: number;
  /** HTTP/1.1 requests without Host are refused (the public side) or accepted. */
  requireHostHeader: boolean;
  /** A request the HTTP/1.1 server refused itself (parse error, tunnel, timeout). */
  onRefused(ctx: C, status: number, reason: Reason): void;
}

export class HandedHttpServers<C> {
  readonly #h1: Http1Front;
  readonly #h2: Http2Server;
  readonly #context = new WeakMap<object, C>();
  readonly #sessions = new Set<Http2Session>();
  /** The context of the connection being handed to the HTTP/2 server right now. */
  #handing: C | undefined;

  constructor(handle: (down: Downstream, ctx: C) => void, opts: HandedServerOptions<C>) {
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
      if (this.#handing !== undefined) this.#context.set(session, this.#handing);
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', () => session.destroy());
      session.setTimeout(opts.idleTimeoutMs, () => session.close());
    });
    this.#h2.on(
      'stream',
      (
        stream: ServerHttp2Stream,
        headers: IncomingHttpHeaders,
        _flags: number,
        rawHeaders: string[],
      ) => {
        stream.on('error', () => stream.destroy());
        guardResets(stream);
        const ctx = this.#context.get(stream.session as object);
        if (ctx !== undefined) handle(fromHttp2(stream, headers, rawHeaders), ctx);
        else stream.destroy();
      },
    );
  }

  /** Serves `socket` as HTTP/2 or HTTP/1.1; every request on it is handled with `ctx`. */
  accept(socket: Socket, ctx: C, h2: boolean): void {
    if (!h2) {
      this.#context.set(socket, ctx);
      this.#h1.accept(socket);
      return;
    }
    // The server makes the session synchronously inside emit(), which is when it is tagged.
    this.#handing = ctx;
    try {
      this.#h2.emit('connection', socket);
    } finally {
      this.#handing = undefined;
    }
  }

  close(): void {
    for (const s of this.#sessions) s.destroy();
    this.#h1.server.closeAllConnections();
    this.#h1.server.close(() => {}); // stops the timeout checks (it never listened)
  }
}
