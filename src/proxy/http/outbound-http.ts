/**
 * HTTP on an upstream's local listener (upstreams whose protocol is http, http2 or grpc). The
 * application may speak HTTP/1.1 or HTTP/2 without TLS (h2c, as gRPC clients do): the first
 * bytes tell which. Each request goes to an endpoint the balancer picks, over a pooled mTLS
 * connection to that endpoint's proxy, which must prove the destination's identity. Between
 * proxies the default is one multiplexed HTTP/2 session per endpoint (measured faster than a
 * pool of HTTP/1.1 connections: docs/benchmarks.md); HTTP/1.1 pools remain selectable.
 *
 * Pools are replaced when the proxy's certificates change (new requests use new handshakes,
 * requests in flight finish on the old sessions) and closed when their endpoint leaves the plan.
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Clock } from '../../core/index.js';
import { endpointAt, endpointKey, pickFirst, type BalancerState } from '../balance.js';
import { sameTls, type Endpoint, type ProxyPlan, type UpstreamPlan } from '../plan.js';
import { REASON, type Reason } from '../reasons.js';
import { mtlsOptions } from '../transport/mtls.js';
import type { Downstream } from './downstream.js';
import { refusedRecord, track, type RequestObserver } from './exchange.js';
import { BodyReplay } from './body-replay.js';
import { Outliers } from '../outlier.js';
import { HandedHttpServers } from './handed-servers.js';
import { H1Exchange } from './h1-front.js';
import { H1Pool } from './h1-pool.js';
import { H2Exchange } from './h2-front.js';
import { H2Pool } from './h2-pool.js';
import { REQUEST_TIMEOUT_RESPONSE } from './http1-server.js';
import { SentHead, isHeadProblem, prepareH1Head, prepareHead } from './request-head.js';
import { Http1Target, Http2Target, type HttpTarget, type TargetError } from './targets.js';

export type UpstreamHttpVersion = 'h2' | 'http1';

export interface OutboundHttpDeps {
  plan(): ProxyPlan | undefined;
  /** Failures worth an operator's eye: retries, ejections, wrong identities. */
  log: { info(obj: object, msg: string): void };
  /** The upstream a listener serves, by the listener key. */
  upstream(listenerKey: string): UpstreamPlan | undefined;
  clock: Clock;
  observe: RequestObserver;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** Time a client has to send a request head (slowloris), and its first byte. */
  headersTimeoutMs: number;
  /** How proxies talk to each other (default h2). */
  version: UpstreamHttpVersion;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * What an upstream proxy answers (503, in its reason header) when it never handed the request
 * to its application; the header is the proxies' own (stripped from applications' answers).
 */
const UNPROCESSED: ReadonlySet<unknown> = new Set([REASON.localAppUnreachable, REASON.noPlan]);

/** Idle pooled connections to another proxy close after this long (its front keeps them 60 s). */
const PEER_POOL_IDLE_MS = 30_000;

export class OutboundHttp {
  readonly #servers: HandedHttpServers<string>;
  /** Pools by upstream identity and endpoint. */
  #targets = new Map<string, HttpTarget>();
  /** The same pools by the plan's endpoint objects: no key string per request. */
  #byEndpoint = new WeakMap<Endpoint, Map<PoolKind, HttpTarget>>();
  readonly #balancers = new Map<string, BalancerState>();
  #tls: ProxyPlan['tls'] | undefined;
  readonly #outliers: Outliers;

  constructor(private readonly deps: OutboundHttpDeps) {
    this.#outliers = new Outliers(deps.clock);
    const onRefused = (
      key: string,
      status: number,
      reason: Reason,
      head?: { method: string; path: string },
    ): void =>
      deps.observe(
        refusedRecord(
          'outbound',
          deps.plan()?.service ?? 'unknown',
          deps.upstream(key)?.destination ?? 'unknown',
          status,
          reason,
          head,
        ),
      );
    const handle = (down: Downstream, key: string): void => this.#handle(down, key);
    this.#servers = new HandedHttpServers(handle, {
      idleTimeoutMs: deps.idleTimeoutMs,
      headersTimeoutMs: deps.headersTimeoutMs,
      // The destination's name stands in for a missing Host.
      requireHostHeader: false,
      onRefused,
    });
  }

  /** Serves an application's connection to the listener `listenerKey`. */
  accept(socket: Socket, listenerKey: string): void {
    socket.on('error', () => socket.destroy());
    // Until its first byte it belongs to no server, so no server's timeouts apply yet: a
    // client that sends nothing gets the 408 an HTTP/1.1 server would send it.
    const silent = setTimeout(() => {
      this.deps.observe(
        refusedRecord(
          'outbound',
          this.deps.plan()?.service ?? 'unknown',
          this.deps.upstream(listenerKey)?.destination ?? 'unknown',
          408,
          REASON.downstreamTimeout,
        ),
      );
      socket.end(REQUEST_TIMEOUT_RESPONSE);
      setTimeout(() => socket.destroy(), 1_000).unref();
    }, this.deps.headersTimeoutMs);
    socket.once('close', () => clearTimeout(silent));
    const sniff = (): void => {
      const first = socket.read() as Buffer | null;
      if (!first) return void socket.once('readable', sniff);
      clearTimeout(silent);
      socket.unshift(first);
      const n = Math.min(first.length, PREFACE.length);
      if (first.subarray(0, n).equals(PREFACE.subarray(0, n)))
        this.#servers.accept(socket, listenerKey, 'h2');
      else this.#servers.accept(socket, listenerKey, 'spliced');
    };
    socket.once('readable', sniff);
  }

  /** Pools follow the plan: new certificates start new pools; gone endpoints are closed. */
  setPlan(plan: ProxyPlan): void {
    // Plans are rebuilt on every input change; only new certificates need new pools.
    if (!this.#tls || !sameTls(this.#tls, plan.tls)) {
      this.#tls = plan.tls;
      for (const t of this.#targets.values()) t.close();
      this.#targets = new Map();
      this.#byEndpoint = new WeakMap();
      return;
    }
    const wanted = new Set<string>();
    const endpoints = new Set<string>();
    for (const u of plan.upstreams)
      for (const ep of u.endpoints) {
        wanted.add(poolKey(u, ep, this.deps.version));
        wanted.add(poolKey(u, ep, 'spliced'));
        wanted.add(poolKey(u, ep, 'frames'));
        endpoints.add(endpointKey(ep));
      }
    this.#outliers.retain(endpoints);
    for (const [k, t] of this.#targets) {
      if (wanted.has(k)) continue;
      t.close();
      this.#targets.delete(k);
      this.#byEndpoint = new WeakMap();
    }
  }

  /** Finishes the requests in flight and takes no more on open connections. */
  drain(): void {
    this.#servers.drain();
  }

  close(): void {
    this.#servers.close();
    for (const t of this.#targets.values()) t.destroy();
    this.#targets.clear();
  }

  #handle(down: Downstream, listenerKey: string): void {
    const plan = this.deps.plan();
    const upstream = this.deps.upstream(listenerKey);
    const out = track(
      down,
      'outbound',
      plan?.service ?? 'unknown',
      upstream?.destination ?? 'unknown',
      this.deps.observe,
    );
    const refuse = (status: number, reason: Reason, message: string): void => {
      out.status = status;
      out.flags = reason;
      down.refuse(status, reason, message);
    };
    if (!plan || this.deps.clock.now() >= plan.tls.notAfter)
      return refuse(503, REASON.noPlan, 'no plan');
    if (!upstream || upstream.endpoints.length === 0)
      return refuse(503, REASON.noHealthyUpstream, 'no healthy upstream');
    // The same head the destination's proxy will judge: normalized here, so what it decides on
    // is what its app receives, and what this app sent is refused here if it is ambiguous.
    const prepared =
      down instanceof H1Exchange
        ? prepareH1Head(down.head, upstream.destination)
        : prepareHead(down, upstream.destination);
    if (isHeadProblem(prepared)) {
      out.flags = REASON.badRequest;
      if (prepared.malformed) return down.malformed(REASON.badRequest, prepared.message);
      return refuse(400, REASON.badRequest, prepared.message);
    }
    out.path = prepared.target;
    let state = this.#balancers.get(listenerKey);
    if (!state) this.#balancers.set(listenerKey, (state = { next: 0 }));
    const kind = poolKind(down, this.deps.version);
    const first = pickFirst(
      upstream,
      state,
      (ep) => this.#targetFor(plan, upstream, ep, kind).active,
    );
    const n = upstream.endpoints.length;
    // Ejected endpoints are passed over (unless every endpoint is ejected).
    const skip = this.#outliers.skipper(upstream);
    const next = (i: number): number => {
      while (skip && i < n && skip(endpointAt(upstream, first, i))) i++;
      return i;
    };
    const head = new SentHead(down.method, prepared, undefined);
    // Only a body needs keeping for a resend: a bodiless request is sent as it is, any number
    // of times (most mesh calls), without a second stream in its path.
    // (The proxy's own fronts keep their own copy of a body for that.)
    const own = down instanceof H1Exchange || down instanceof H2Exchange;
    const replay = down.hasBody && !own ? new BodyReplay(down) : undefined;
    const sent = replay ? replay.downstream : down;
    const replayable = (): boolean =>
      down instanceof H1Exchange || down instanceof H2Exchange
        ? down.replayable
        : replay === undefined || replay.replayable;
    let renewed = false;
    /** The one resend of a request an upstream proxy answered without reaching its app. */
    let resent = false;
    const attempt = (i: number): void => {
      const ep = endpointAt(upstream, first, i);
      out.upstream = `${ep.address}:${ep.port}`;
      const target = this.#targetFor(this.deps.plan() ?? plan, upstream, ep, kind);
      target.send(head, sent, (err, res) => {
        if (err || !res) return failed(i, err, target);
        if (res.status === 503 && UNPROCESSED.has(res.proxyReason)) {
          const why = String(res.proxyReason);
          this.#eject(upstream, ep, why);
          const j = next(i + 1);
          if (!resent && j < n && replayable()) {
            resent = true;
            res.discard();
            return attempt(j);
          }
        } else this.#outliers.succeeded(ep);
        out.status = res.status;
        down.relay(res);
      });
    };
    const failed = (i: number, err: TargetError | undefined, target: HttpTarget): void => {
      const ep = endpointAt(upstream, first, i);
      if (err?.reason === REASON.upstreamIdentity)
        this.deps.log.info(
          {
            service: plan.service,
            destination: upstream.destination,
            endpoint: `${ep.address}:${ep.port}`,
            reason: err.reason,
            why: err.message,
          },
          'upstream endpoint proved another identity',
        );
      if (err?.retryable) {
        // The pool was replaced under the request (new certificates): once more on the new one.
        if (target.retired && !renewed) {
          renewed = true;
          return attempt(i);
        }
        // Nothing reached it (refused, failed or wrong-identity handshake): leave it out a while.
        if (err.notSent) this.#eject(upstream, ep, err.reason);
        const j = next(i + 1);
        if (j < n && replayable()) return attempt(j);
      }
      refuse(503, err?.reason ?? REASON.upstreamConnectFailure, 'upstream unavailable');
    };
    attempt(next(0));
  }

  #eject(u: UpstreamPlan, ep: Endpoint, reason: string): void {
    const ms = this.#outliers.eject(ep);
    if (ms === undefined) return;
    this.deps.log.info(
      {
        service: this.deps.plan()?.service,
        destination: u.destination,
        endpoint: `${ep.address}:${ep.port}`,
        reason,
        ejected_ms: ms,
      },
      'upstream endpoint ejected',
    );
  }

  /**
   * The pool for `ep`: spliced HTTP/1.1 connections for requests from the HTTP/1.1 front,
   * linked HTTP/2 streams for requests from the HTTP/2 front, else the configured version.
   */
  #targetFor(plan: ProxyPlan, u: UpstreamPlan, ep: Endpoint, kind: PoolKind): HttpTarget {
    let mine = this.#byEndpoint.get(ep);
    const known = mine?.get(kind);
    if (known) return known;
    if (!mine) this.#byEndpoint.set(ep, (mine = new Map()));
    const version = kind;
    const key = poolKey(u, ep, version);
    let t = this.#targets.get(key);
    if (t) {
      mine.set(kind, t);
      return t;
    }
    const tls = mtlsOptions(plan, u);
    const http1 = (): HttpTarget =>
      new Http1Target({
        host: ep.address,
        port: ep.port,
        tls,
        idleTimeoutMs: this.deps.idleTimeoutMs,
      });
    const connectH2 = (): Socket => {
      const s = tlsConnect({ ...tls, host: ep.address, port: ep.port, ALPNProtocols: ['h2'] });
      s.setTimeout(this.deps.connectTimeoutMs, () => s.destroy(new Error('connect timeout')));
      s.once('secureConnect', () => s.setTimeout(0));
      return s;
    };
    const http2 = (): HttpTarget =>
      new Http2Target({
        origin: `https://${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`,
        idleTimeoutMs: this.deps.idleTimeoutMs,
        connect: connectH2,
      });
    t =
      version === 'frames'
        ? new H2Pool({
            connect: connectH2,
            tls: true,
            idleTimeoutMs: this.deps.idleTimeoutMs,
            fallback: http2,
          })
        : version === 'spliced'
          ? new H1Pool({
              connect: () => {
                const s = tlsConnect({
                  ...tls,
                  host: ep.address,
                  port: ep.port,
                  ALPNProtocols: ['http/1.1'],
                });
                s.setTimeout(this.deps.connectTimeoutMs, () =>
                  s.destroy(new Error('connect timeout')),
                );
                s.once('secureConnect', () => s.setTimeout(0));
                return s;
              },
              tls: true,
              idleTimeoutMs: PEER_POOL_IDLE_MS,
              fallback: http1,
              peerIsTrellis: true,
            })
          : version === 'h2'
            ? http2()
            : http1();
    this.#targets.set(key, t);
    mine.set(kind, t);
    return t;
  }
}

/** Which pool a request takes: by the front it came from, then the configured version. */
type PoolKind = UpstreamHttpVersion | 'spliced' | 'frames';

function poolKind(down: Downstream, version: UpstreamHttpVersion): PoolKind {
  if (down instanceof H1Exchange) return 'spliced';
  if (down instanceof H2Exchange && version === 'h2') return 'frames';
  return version;
}

const poolKey = (u: UpstreamPlan, ep: Endpoint, v: PoolKind): string =>
  `${v}|${u.identity}|${endpointKey(ep)}`;
