/**
 * HTTP behind the inbound mTLS listener, for services whose protocol is http, http2 or grpc.
 * The peer proxy picks the version by ALPN (h2, else HTTP/1.1). Every request (every HTTP/2
 * stream) is decided by the intentions in force when it arrives, so a changed intention applies
 * to the next request on a pooled or multiplexed connection; allowed requests go to the local
 * application with hop-by-hop headers removed and the verified caller in
 * X-Forwarded-Client-Cert (a client's own is dropped).
 *
 * HTTP/1.1: the proxy's strict parser (no obsolete line folding, conflicting Content-Length and
 * Transfer-Encoding refused), header size and time limits; Upgrade and CONNECT are refused so
 * nothing tunnels around L7 policy. HTTP/2: the proxy's own connections (h2-conn.ts) with
 * bounded concurrent streams, header list size, rapid-reset and CONTINUATION-flood limits.
 */
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../core/index.js';
import { decide } from '../../policy/index.js';
import type { ProxyPlan } from '../plan.js';
import { REASON, type Reason } from '../reasons.js';
import type { Downstream } from './downstream.js';
import { refusedRecord, track, type RequestObserver } from './exchange.js';
import { HandedHttpServers } from './handed-servers.js';
import { xfccField, type AddedField } from './headers.js';
import { H1Exchange } from './h1-front.js';
import { H1Pool } from './h1-pool.js';
import { H2Pool } from './h2-pool.js';
import { SentHead, isHeadProblem, prepareH1Head, prepareHead } from './request-head.js';
import { Http1Target, Http2Target, type HttpTarget } from './targets.js';

export interface Caller {
  service: string;
  uri: string;
}

export interface InboundHttpDeps {
  plan(): ProxyPlan | undefined;
  clock: Clock;
  log: { info(obj: object, msg: string): void };
  observe: RequestObserver;
  idleTimeoutMs: number;
  /** Time a client has to send a request head (slowloris). */
  headersTimeoutMs: number;
  /** The local application refused or did not answer a connection (its health may follow). */
  onLocalAppUnreachable?: () => void;
}

/**
 * Idle pooled connections to the application close after this long: below common servers'
 * keep-alive timeouts (Node's is 5 s), so the proxy, not the application, closes them.
 */
const APP_POOL_IDLE_MS = 4_000;

/** Callers whose X-Forwarded-Client-Cert field is kept made (past that, the cache starts over). */
const MAX_CALLER_FIELDS = 1024;

export class InboundHttp {
  readonly #servers: HandedHttpServers<Caller>;
  #app: { key: string; h1: boolean; target: HttpTarget } | undefined;
  readonly #fields = new Map<string, AddedField>();
  #fieldsOf = '';

  constructor(private readonly deps: InboundHttpDeps) {
    const onRefused = (
      caller: Caller,
      status: number,
      reason: Reason,
      head?: { method: string; path: string },
    ): void =>
      deps.observe(
        refusedRecord(
          'inbound',
          caller.service,
          deps.plan()?.service ?? 'unknown',
          status,
          reason,
          head,
        ),
      );
    const handle = (down: Downstream, caller: Caller): void => this.#handle(down, caller);
    this.#servers = new HandedHttpServers(handle, {
      idleTimeoutMs: deps.idleTimeoutMs,
      headersTimeoutMs: deps.headersTimeoutMs,
      requireHostHeader: true,
      onRefused,
    });
  }

  /** Serves an authenticated connection; the caller is the identity its certificate proved. */
  accept(socket: TLSSocket, caller: Caller): void {
    const h2 = socket.alpnProtocol === 'h2';
    // HTTP/1.1 to an HTTP/1.1 application is spliced; to an HTTP/2 one it is translated.
    const h1App = this.#app === undefined || this.#app.h1;
    this.#servers.accept(socket, caller, h2 ? 'h2' : h1App ? 'spliced' : 'translated');
  }

  /** The local application's pool follows the plan (address or protocol changes). */
  setPlan(plan: ProxyPlan): void {
    const { address, port } = plan.inbound.localApp;
    const h2 = plan.inbound.protocol === 'http2' || plan.inbound.protocol === 'grpc';
    const key = `${h2 ? 'h2' : 'h1'}|${address}|${port}`;
    if (this.#app?.key === key) return;
    this.#app?.target.close();
    const host = address.includes(':') ? `[${address}]` : address;
    this.#app = {
      key,
      h1: !h2,
      target: h2
        ? new H2Pool({
            connect: () => netConnect({ host: address, port }),
            tls: false,
            idleTimeoutMs: 60_000,
            // HTTP/1.1 callers (translated) reach an HTTP/2 app through node:http2.
            fallback: () =>
              new Http2Target({ origin: `http://${host}:${port}`, idleTimeoutMs: 60_000 }),
          })
        : new H1Pool({
            connect: () => netConnect({ host: address, port }),
            tls: false,
            idleTimeoutMs: APP_POOL_IDLE_MS,
            fallback: () => new Http1Target({ host: address, port, idleTimeoutMs: 60_000 }),
          }),
    };
  }

  /**
   * The X-Forwarded-Client-Cert field for a caller, made once per caller (and again when this
   * service's identity changes): most requests come from few callers.
   */
  #callerField(identity: string, uri: string): AddedField {
    if (this.#fieldsOf !== identity || this.#fields.size >= MAX_CALLER_FIELDS) {
      this.#fields.clear();
      this.#fieldsOf = identity;
    }
    let f = this.#fields.get(uri);
    if (f === undefined) this.#fields.set(uri, (f = xfccField(`By=${identity};URI=${uri}`)));
    return f;
  }

  /** Finishes the requests in flight and takes no more on open connections. */
  drain(): void {
    this.#servers.drain();
  }

  close(): void {
    this.#servers.close();
    this.#app?.target.destroy();
  }

  #handle(down: Downstream, caller: Caller): void {
    const plan = this.deps.plan();
    const out = track(
      down,
      'inbound',
      caller.service,
      plan?.service ?? 'unknown',
      this.deps.observe,
    );
    if (!plan || !this.#app || this.deps.clock.now() >= plan.tls.notAfter) {
      out.status = 503;
      out.flags = REASON.noPlan;
      return down.refuse(503, REASON.noPlan, 'no plan');
    }
    const head =
      down instanceof H1Exchange
        ? prepareH1Head(down.head, undefined)
        : prepareHead(down, undefined);
    if (isHeadProblem(head)) {
      out.flags = REASON.badRequest;
      if (head.malformed) return down.malformed(REASON.badRequest, head.message);
      out.status = 400;
      return down.refuse(400, REASON.badRequest, head.message);
    }
    out.path = head.target;
    // What the rules judge is what is sent: one head, its fields made only if something reads them.
    const sent = new SentHead(down.method, head, this.#callerField(plan.identity, caller.uri));
    const d = decide(
      plan.intentions,
      { source: caller.service, destination: plan.service, http: sent.rules },
      plan.defaultAllow,
    );
    if (!d.allowed) {
      out.status = 403;
      out.flags = REASON.unauthorized;
      return down.refuse(403, REASON.unauthorized, 'RBAC: access denied');
    }
    const app = plan.inbound.localApp;
    out.upstream = `${app.address}:${app.port}`;
    this.#app.target.send(sent, down, (err, res) => {
      if (err || !res) {
        // Only "never reached the app" is LF: callers resend those elsewhere, whatever the method.
        const reason = err?.notSent ? REASON.localAppUnreachable : REASON.localAppReset;
        this.deps.log.info(
          { service: plan.service, reason, err: err?.message },
          'local app failed',
        );
        if (reason === REASON.localAppUnreachable) this.deps.onLocalAppUnreachable?.();
        out.status = 503;
        out.flags = reason;
        return down.refuse(503, reason, 'local application unavailable');
      }
      // The reason header is the proxies' word on what happened; an app cannot speak it.
      if (res.proxyReason !== undefined) res.dropProxyReason();
      out.status = res.status;
      down.relay(res);
    });
  }
}
