/**
 * The HTTP/1.1 and HTTP/2 servers of one side of a proxy. They never listen: the proxy hands
 * them connections it accepted (after mTLS on the public listener, after sniffing on an
 * upstream listener), each with a context (who the caller is, which upstream it is for) that
 * every request on that connection is handled with.
 */
import type { Socket } from 'node:net';
import type { Reason } from '../reasons.js';
import { fromHttp1, type Downstream } from './downstream.js';
import { createHttp1Server, type Http1Front } from './http1-server.js';
import { H1Front } from './h1-front.js';
import { H2Front } from './h2-front.js';
import { HTTP1_SERVER_LIMITS } from './limits.js';

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
 * How a connection is served: `h2` (the proxy's own HTTP/2 front, h2-front.ts), `spliced`
 * (the proxy's own HTTP/1.1 front, bodies moved as bytes) or `translated` (node:http, for
 * HTTP/1.1 callers of an HTTP/2 application).
 */
export type Served = 'h2' | 'spliced' | 'translated';

export class HandedHttpServers<C> {
  readonly #h1: Http1Front;
  readonly #front: H1Front<C>;
  readonly #h2: H2Front<C>;
  readonly #context = new WeakMap<object, C>();

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
    this.#h2 = new H2Front(handle, {
      idleTimeoutMs: opts.idleTimeoutMs,
      onRefused: (ctx, status, reason, head) => opts.onRefused(ctx, status, reason, head),
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
    this.#h2.accept(socket, ctx);
  }

  /**
   * Finishes what is in flight and takes no more: HTTP/1.1 connections end after their current
   * response, HTTP/2 ones get GOAWAY and close when their streams end.
   */
  drain(): void {
    this.#front.drain();
    this.#h2.drain();
    this.#h1.server.closeIdleConnections();
  }

  close(): void {
    this.#front.close();
    this.#h2.close();
    this.#h1.server.closeAllConnections();
    this.#h1.server.close(() => {}); // stops the timeout checks (it never listened)
  }
}
