/**
 * One service's proxy, driven only by its ProxyPlan (L4: opaque TCP over mTLS).
 *
 *   inbound:  public listener -> mTLS (client cert must chain to the roots) -> exactly one
 *             SPIFFE service id -> intentions (L4) -> connect the local app -> bytes both ways
 *   outbound: upstream listener -> pick an endpoint -> mTLS connect presenting our leaf, the
 *             server must be exactly the destination's identity -> bytes both ways
 *
 * Nothing is served before the first plan (fail closed), nor after the plan's certificate
 * expires. A new plan is swapped in at once: new connections use it, open ones keep their
 * sockets, and open inbound connections are re-authorized against the new intentions so a
 * deny closes them within the swap (Consul leaves them open).
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import type { Clock } from '../core/index.js';
import { decide } from '../policy/index.js';
import {
  type AccessLogTarget,
  sameTls,
  trustDomainsOf,
  type Endpoint,
  type ProxyPlan,
  type UpstreamPlan,
} from './plan.js';
import { REASON, type Reason } from './reasons.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import { endpointAt, endpointKey, pickFirst, type BalancerState } from './balance.js';
import type { RequestRecord } from './http/exchange.js';
import { InboundHttp } from './http/inbound-http.js';
import { OutboundHttp, type UpstreamHttpVersion } from './http/outbound-http.js';
import { HTTP1_SERVER_LIMITS } from './http/limits.js';
import { pipeSockets, type PipeStats } from './tcp/pipe.js';
import { checkPeer } from './transport/identity.js';
import { mtlsOptions } from './transport/mtls.js';
import { closeServer, listen, ListenError } from './listen.js';

export interface ProxyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  /** Writes one HTTP request's access-log line from its record (else info() is used). */
  request?(r: RequestRecord): void;
}

export interface ServiceProxyOptions {
  clock: Clock;
  log: ProxyLogger;
  /** A connection with no bytes either way for this long is closed (default 1h). */
  idleTimeoutMs?: number;
  /** Time for a peer to finish its TLS handshake (default 10s). */
  handshakeTimeoutMs?: number;
  /** Time to connect to an upstream endpoint or the local app (default 5s). */
  connectTimeoutMs?: number;
  /** Time an HTTP/1.1 client has to send a request head, its first byte included (default 10s). */
  httpHeadersTimeoutMs?: number;
  /** Connection and request counters, labelled by services and reason. */
  metrics?: ProxyMetrics;
  /**
   * Where the per-request and per-connection access log goes when the plan does not say
   * (default: `log`; false: off).
   */
  accessLog?: ProxyLogger | false;
  /** The logger of a plan's access-log target (a plan with `accessLogs` enabled uses it). */
  accessLogTo?: (target: AccessLogTarget) => ProxyLogger;
  /** How this proxy's HTTP upstream connections speak to other proxies (default h2). */
  upstreamHttp?: UpstreamHttpVersion;
  /**
   * The local application refused (or did not accept) a connection: its health is in doubt
   * (the agent probes it and turns the sidecar critical while it stays unreachable).
   */
  onLocalAppUnreachable?: () => void;
}

interface InboundConn {
  socket: TLSSocket;
  source: string;
  /** Set when the proxy itself ends the connection (an intention now denies it). */
  endedFor?: Reason;
}

interface OutboundListener extends BalancerState {
  server: Server;
  key: string;
}

const listenKey = (address: string, port: number): string => `${address}|${port}`;

/** A listener opened for a plan, not yet in place. */
interface Opened {
  kind: 'inbound' | 'outbound';
  key: string;
  address: string;
  port: number;
  server: Server;
  listener?: OutboundListener;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '::ffff:0.0.0.0']);

/** Whether two listeners could not both be bound: one port, the same or a wildcard address. */
function sharesPort(
  a: { address: string; port: number },
  b: { address: string; port: number },
): boolean {
  return (
    a.port === b.port &&
    (a.address === b.address || WILDCARDS.has(a.address) || WILDCARDS.has(b.address))
  );
}

/** Stops a server accepting and waits until its port is released (not for its connections). */
function closeListening(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close();
    setImmediate(resolve);
  });
}
/** The service label when a peer never proved who it is. */
const UNKNOWN = 'unknown';

export class ServiceProxy {
  readonly #o: Required<
    Omit<ServiceProxyOptions, 'metrics' | 'accessLog' | 'accessLogTo' | 'onLocalAppUnreachable'>
  > &
    Pick<ServiceProxyOptions, 'metrics' | 'accessLogTo'>;
  #onAppDown: (() => void) | undefined;
  /** The proxy's own access logger (plans without `accessLogs`). */
  readonly #ownAccessLog: ProxyLogger | undefined;
  /** The access logger the current plan asks for (undefined: off), and its listener logs. */
  #accessLog: ProxyLogger | undefined;
  #listenerLogs = true;
  #plan: ProxyPlan | undefined;
  #inbound: TlsServer | undefined;
  #inboundKey = '';
  #outbound = new Map<string, OutboundListener>();
  /** The plan's upstreams by listener address. */
  #upstreams = new Map<string, UpstreamPlan>();
  #open = new Set<InboundConn>();
  /** Every accepted socket, handshake or not, so stop() ends them at once. */
  #accepted = new Set<Socket>();
  #stopped = false;
  /** drain() began: no listener is opened again. */
  #draining = false;
  #queue: Promise<void> = Promise.resolve();
  readonly #inboundHttp: InboundHttp;
  readonly #outboundHttp: OutboundHttp;
  /** TCP connections open to each endpoint (least_request for TCP upstreams). */
  readonly #tcpLoad = new Map<string, number>();

  constructor(opts: ServiceProxyOptions) {
    const { onLocalAppUnreachable, ...rest } = opts;
    this.#onAppDown = onLocalAppUnreachable;
    this.#o = {
      idleTimeoutMs: 3_600_000,
      handshakeTimeoutMs: 10_000,
      connectTimeoutMs: 5_000,
      httpHeadersTimeoutMs: HTTP1_SERVER_LIMITS.headersTimeout ?? 10_000,
      upstreamHttp: 'h2',
      ...rest,
    };
    this.#ownAccessLog = opts.accessLog === false ? undefined : (opts.accessLog ?? opts.log);
    this.#accessLog = this.#ownAccessLog;
    const observe = (r: RequestRecord): void => this.#onRequest(r);
    this.#inboundHttp = new InboundHttp({
      plan: () => this.#plan,
      clock: this.#o.clock,
      log: this.#o.log,
      observe,
      idleTimeoutMs: this.#o.idleTimeoutMs,
      headersTimeoutMs: this.#o.httpHeadersTimeoutMs,
      onLocalAppUnreachable: () => this.#onAppDown?.(),
    });
    this.#outboundHttp = new OutboundHttp({
      plan: () => this.#plan,
      log: this.#o.log,
      upstream: (key) => this.#upstreams.get(key),
      clock: this.#o.clock,
      observe,
      idleTimeoutMs: this.#o.idleTimeoutMs,
      connectTimeoutMs: this.#o.connectTimeoutMs,
      headersTimeoutMs: this.#o.httpHeadersTimeoutMs,
      version: this.#o.upstreamHttp,
    });
  }

  /** Replaces the onLocalAppUnreachable callback (a new owner took the proxy over). */
  onLocalAppUnreachable(fn: () => void): void {
    this.#onAppDown = fn;
  }

  get plan(): ProxyPlan | undefined {
    return this.#plan;
  }

  /** The public listener's port (useful when the plan asked for port 0). */
  inboundPort(): number | undefined {
    const a = this.#inbound?.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  upstreamPort(destination: string): number | undefined {
    const u = this.#plan?.upstreams.find((x) => x.destination === destination);
    if (!u) return undefined;
    const a = this.#outbound.get(listenKey(u.bindAddress, u.bindPort))?.server.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  /**
   * Installs a complete plan: listeners opened or closed to match, open connections re-checked.
   * Calls are applied one at a time in order, and a plan older than the one in force is
   * ignored, so watches that fire together cannot race each other's listeners.
   */
  setPlan(plan: ProxyPlan): Promise<void> {
    const run = this.#queue.then(() => this.#install(plan));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #install(plan: ProxyPlan): Promise<void> {
    // A draining proxy opens nothing again: its plan stays until it stops.
    if (this.#stopped || this.#draining) return;
    if (this.#plan && plan.version < this.#plan.version) return;
    const old = this.#plan;
    // Make before break: the listeners this plan adds are opened while the old ones still
    // serve. If one cannot be opened (its port is taken), the old listeners stay, and so
    // does the old plan, except what decides who may connect (below).
    let opened: Opened[];
    try {
      opened = await this.#openListeners(plan);
    } catch (err) {
      if (err instanceof ListenError && old && old.service === plan.service && !this.#stopped)
        this.#apply(keepListeners(old, plan), old, []);
      throw err;
    }
    if (this.#stopped) {
      for (const o of opened) void closeServer(o.server);
      return;
    }
    this.#apply(plan, old, opened);
  }

  #apply(plan: ProxyPlan, old: ProxyPlan | undefined, opened: Opened[]): void {
    this.#plan = Object.freeze(plan);
    const a = plan.accessLogs;
    this.#accessLog = !a
      ? this.#ownAccessLog
      : a.enabled
        ? (this.#o.accessLogTo?.(a.target) ?? this.#ownAccessLog)
        : undefined;
    this.#listenerLogs = a?.listenerLogs ?? true;
    this.#upstreams = new Map(plan.upstreams.map((u) => [listenKey(u.bindAddress, u.bindPort), u]));
    if (plan.inbound.protocol !== 'tcp') this.#inboundHttp.setPlan(plan);
    this.#outboundHttp.setPlan(plan);
    this.#swapListeners(plan, old, opened);
    this.#reauthorize(plan);
  }

  /**
   * Opens the listeners `plan` has and the proxy does not. A listener the plan drops that
   * shares a port with one it adds (an address change) is closed first: the two cannot both
   * be bound. On failure the ones opened are closed, the ones closed reopened, and the
   * ListenError thrown.
   */
  async #openListeners(plan: ProxyPlan): Promise<Opened[]> {
    const inKey = listenKey(plan.inbound.bindAddress, plan.inbound.bindPort);
    const wanted: Opened[] = [];
    if (!this.#inbound || inKey !== this.#inboundKey)
      wanted.push({
        kind: 'inbound',
        key: inKey,
        address: plan.inbound.bindAddress,
        port: plan.inbound.bindPort,
        server: this.#newInbound(plan),
      });
    const outKeys = new Set<string>();
    for (const u of plan.upstreams) {
      const key = listenKey(u.bindAddress, u.bindPort);
      outKeys.add(key);
      if (this.#outbound.has(key) || wanted.some((w) => w.kind === 'outbound' && w.key === key))
        continue;
      const l: OutboundListener = { server: createServer({ allowHalfOpen: true }), key, next: 0 };
      l.server.on('connection', (c: Socket) => {
        this.#track(c);
        const proto = this.#upstreams.get(key)?.protocol;
        if (proto && proto !== 'tcp') this.#outboundHttp.accept(c, key);
        else this.#onOutbound(c, l);
      });
      wanted.push({
        kind: 'outbound',
        key,
        address: u.bindAddress,
        port: u.bindPort,
        server: l.server,
        listener: l,
      });
    }
    // Listeners the plan drops, with where they are bound.
    const retiring: { address: string; port: number; server: Server }[] = [];
    const inAddr = this.#inbound?.address();
    if (this.#inbound && inKey !== this.#inboundKey && typeof inAddr === 'object' && inAddr)
      retiring.push({ address: inAddr.address, port: inAddr.port, server: this.#inbound });
    for (const [key, l] of this.#outbound) {
      const a = l.server.address();
      if (!outKeys.has(key) && typeof a === 'object' && a)
        retiring.push({ address: a.address, port: a.port, server: l.server });
    }
    const opened: Opened[] = [];
    const closedEarly: { address: string; port: number; server: Server }[] = [];
    try {
      for (const w of wanted) {
        for (const r of retiring)
          if (w.port !== 0 && sharesPort(r, w) && !closedEarly.includes(r)) {
            await closeListening(r.server);
            closedEarly.push(r);
          }
        await listen(w.server, w.address, w.port);
        opened.push(w);
      }
    } catch (err) {
      for (const o of opened) void closeServer(o.server);
      for (const r of closedEarly)
        await listen(r.server, r.address, r.port).catch((e: unknown) =>
          this.#o.log.warn(
            { service: this.#plan?.service, err: String(e) },
            'could not reopen a listener after a failed plan change',
          ),
        );
      throw err;
    }
    return opened;
  }

  /** Puts the opened listeners in place and stops those the plan no longer has. */
  #swapListeners(plan: ProxyPlan, old: ProxyPlan | undefined, opened: Opened[]): void {
    const inbound = opened.find((o) => o.kind === 'inbound');
    if (inbound) {
      if (this.#inbound) void closeServer(this.#inbound);
      this.#inbound = inbound.server as TlsServer;
      this.#inboundKey = inbound.key;
    } else if (this.#inbound && old && !sameTls(old.tls, plan.tls)) {
      // Plans are rebuilt on every input change; only new certificates need a new context.
      this.#inbound.setSecureContext({
        cert: plan.tls.certChain,
        key: plan.tls.key,
        ca: plan.tls.roots,
      });
    }
    const wanted = new Set(this.#upstreams.keys());
    for (const [key, l] of this.#outbound) {
      if (wanted.has(key)) continue;
      this.#outbound.delete(key);
      void closeServer(l.server);
    }
    for (const o of opened) if (o.listener) this.#outbound.set(o.key, o.listener);
  }

  /**
   * Stops accepting and lets what is open finish: the listeners close, HTTP/1.1 connections end
   * after the request in flight (answered with `connection: close`), HTTP/2 ones get GOAWAY and
   * close when their streams end, TCP connections run until a side ends them. Resolves once
   * every accepted connection has closed, or after `timeoutMs` when the rest are cut; the proxy
   * is stopped either way. Returns how many connections were cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#stopped) return 0;
    this.#draining = true;
    this.#inbound?.close();
    for (const l of this.#outbound.values()) l.server.close();
    this.#inboundHttp.drain();
    this.#outboundHttp.drain();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearInterval(poll);
        clearTimeout(limit);
        resolve();
      };
      // Drain is rare and short: a poll costs less than a hook on every socket's close.
      const poll = setInterval(() => {
        if (this.#accepted.size === 0) done();
      }, 50);
      const limit = setTimeout(done, timeoutMs);
      if (this.#accepted.size === 0) done();
    });
    const cut = this.#accepted.size;
    if (cut > 0)
      this.#o.log.warn(
        {
          service: this.#plan?.service,
          cut,
          open: [...this.#accepted].map(
            (x) => `${x.remoteAddress}:${x.remotePort}->${x.localPort}`,
          ),
        },
        'drain time limit: cutting open connections',
      );
    await this.stop();
    return cut;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const c of this.#open) c.socket.destroy();
    this.#open.clear();
    for (const sock of this.#accepted) sock.destroy();
    this.#accepted.clear();
    const closing: Promise<void>[] = [];
    if (this.#inbound) closing.push(closeServer(this.#inbound));
    for (const l of this.#outbound.values()) closing.push(closeServer(l.server));
    this.#outbound.clear();
    this.#inboundHttp.close();
    this.#outboundHttp.close();
    await Promise.all(closing);
  }

  #track(sock: Socket): void {
    // Small writes (a request head, a response) go out at once: Nagle's algorithm meeting
    // delayed ACKs costs a proxied exchange 40 ms.
    sock.setNoDelay(true);
    this.#accepted.add(sock);
    sock.once('close', () => this.#accepted.delete(sock));
  }

  // ---- inbound ---------------------------------------------------------------------------

  #newInbound(plan: ProxyPlan): TlsServer {
    const server = createTlsServer({
      cert: plan.tls.certChain,
      key: plan.tls.key,
      ca: plan.tls.roots,
      allowHalfOpen: true,
      requestCert: true,
      rejectUnauthorized: true,
      // Proxies pick HTTP/2 when both sides speak HTTP; TCP services ignore ALPN.
      ALPNProtocols: ['h2', 'http/1.1'],
      minVersion: 'TLSv1.2',
      handshakeTimeout: this.#o.handshakeTimeoutMs,
    });
    server.on('connection', (sock: Socket) => this.#track(sock));
    server.on('secureConnection', (s: TLSSocket) => this.#onInbound(s));
    server.on('tlsClientError', (err: Error, s: TLSSocket) => {
      this.#o.log.info(
        {
          service: this.#plan?.service,
          remote: s.remoteAddress,
          reason: REASON.unauthorized,
          err: err.message,
        },
        'inbound handshake refused',
      );
      s.destroy();
    });
    return server;
  }

  #onInbound(s: TLSSocket): void {
    const plan = this.#plan;
    const started = this.#o.clock.now();
    const refuse = (reason: Reason, why: string, source = ''): void => {
      this.#o.log.info(
        { service: plan?.service, source, remote: s.remoteAddress, reason, why },
        'inbound connection refused',
      );
      this.#o.metrics?.connectionClosed(
        'inbound',
        source || UNKNOWN,
        plan?.service ?? UNKNOWN,
        reason,
        0,
        0,
      );
      s.destroy();
    };
    if (!plan || started >= plan.tls.notAfter) return refuse(REASON.noPlan, 'no valid plan');
    const peer = checkPeer(s.getPeerCertificate(), 'client', trustDomainsOf(plan));
    if (!peer.ok) return refuse(REASON.unauthorized, `client certificate refused: ${peer.why}`);
    const id = peer.id;
    // HTTP services decide every request (a refusal is a 403 the caller can read).
    if (plan.inbound.protocol !== 'tcp') return this.#serveHttp(s, id.service, peer.uri);
    const d = l4Decision(plan, id.service);
    if (!d.allowed) return refuse(REASON.unauthorized, d.reason, id.service);
    s.pause();
    const conn: InboundConn = { socket: s, source: id.service };
    this.#open.add(conn);
    const app = netConnect({
      host: plan.inbound.localApp.address,
      port: plan.inbound.localApp.port,
      allowHalfOpen: true,
    });
    app.setNoDelay(true);
    app.setTimeout(this.#o.connectTimeoutMs, () => app.destroy(new Error('connect timeout')));
    app.once('error', (err) => {
      this.#open.delete(conn);
      this.#onAppDown?.();
      refuse(REASON.localAppUnreachable, err.message, id.service);
    });
    app.once('connect', () => {
      app.setTimeout(0);
      app.removeAllListeners('error');
      this.#o.metrics?.connectionOpened('inbound', id.service, plan.service);
      pipeSockets(s, app, this.#o.idleTimeoutMs, (stats, idle) => {
        this.#open.delete(conn);
        this.#access(
          'inbound',
          plan.service,
          id.service,
          started,
          stats,
          conn.endedFor ?? (idle ? REASON.idleTimeout : undefined),
        );
      });
      s.resume();
    });
  }

  /** HTTP: the connection is handed to the HTTP layer, which decides every request. */
  #serveHttp(s: TLSSocket, source: string, uri: string): void {
    this.#o.metrics?.connectionOpened('inbound', source, this.#plan?.service ?? UNKNOWN);
    this.#inboundHttp.accept(s, { service: source, uri });
  }

  /**
   * Closes open inbound TCP connections the new intentions no longer allow. (HTTP connections
   * stay: each next request is decided against the new intentions.)
   */
  #reauthorize(plan: ProxyPlan): void {
    for (const c of this.#open) {
      const d = l4Decision(plan, c.source);
      if (d.allowed) continue;
      this.#o.log.info(
        { service: plan.service, source: c.source, reason: REASON.unauthorized, why: d.reason },
        'closing an open connection: intentions now deny it',
      );
      this.#open.delete(c);
      c.endedFor = REASON.unauthorized;
      c.socket.destroy();
    }
  }

  // ---- outbound --------------------------------------------------------------------------

  #onOutbound(client: Socket, l: OutboundListener): void {
    const plan = this.#plan;
    const started = this.#o.clock.now();
    const upstream = this.#upstreams.get(l.key);
    const fail = (reason: Reason, why: string, dest = upstream?.destination ?? ''): void => {
      this.#o.log.info(
        { service: plan?.service, destination: dest, reason, why },
        'outbound connection failed',
      );
      this.#o.metrics?.connectionClosed(
        'outbound',
        plan?.service ?? UNKNOWN,
        dest || UNKNOWN,
        reason,
        0,
        0,
      );
      client.destroy();
    };
    if (!plan || started >= plan.tls.notAfter) return fail(REASON.noPlan, 'no valid plan');
    if (!upstream) return fail(REASON.noHealthyUpstream, 'no such upstream in the plan');
    if (upstream.endpoints.length === 0)
      return fail(REASON.noHealthyUpstream, 'no healthy endpoint');
    client.pause();
    client.on('error', () => client.destroy());
    const first = pickFirst(upstream, l, (ep) => this.#tcpLoad.get(endpointKey(ep)) ?? 0);
    const tryNext = (i: number, lastError: string, reason: Reason): void => {
      if (client.destroyed) return;
      if (i >= upstream.endpoints.length) return fail(reason, lastError);
      const ep = endpointAt(upstream, first, i);
      const up = this.#dial(plan, upstream, ep);
      up.once('error', (err: Error & { reason?: Reason }) => {
        up.destroy();
        tryNext(
          i + 1,
          `${ep.address}:${ep.port}: ${err.message}`,
          err.reason ?? REASON.upstreamConnectFailure,
        );
      });
      up.once('secureConnect', () => {
        up.setTimeout(0);
        up.removeAllListeners('error');
        this.#o.metrics?.connectionOpened('outbound', plan.service, upstream.destination);
        const k = endpointKey(ep);
        this.#tcpLoad.set(k, (this.#tcpLoad.get(k) ?? 0) + 1);
        pipeSockets(client, up, this.#o.idleTimeoutMs, (stats, idle) => {
          const left = (this.#tcpLoad.get(k) ?? 1) - 1;
          if (left > 0) this.#tcpLoad.set(k, left);
          else this.#tcpLoad.delete(k);
          this.#access(
            'outbound',
            upstream.destination,
            plan.service,
            started,
            stats,
            idle ? REASON.idleTimeout : undefined,
          );
        });
        client.resume();
      });
    };
    tryNext(0, '', REASON.upstreamConnectFailure);
  }

  /** mTLS to an endpoint; the handshake fails unless the server is exactly the destination. */
  #dial(plan: ProxyPlan, upstream: UpstreamPlan, ep: Endpoint): TLSSocket {
    const up = tlsConnect({
      // Half-close must pass through (Node honours it; its types omit it).
      ...({ allowHalfOpen: true } as object),
      ...mtlsOptions(plan, upstream),
      host: ep.address,
      port: ep.port,
    });
    up.setNoDelay(true);
    up.setTimeout(this.#o.connectTimeoutMs, () => up.destroy(new Error('connect timeout')));
    return up;
  }

  #onRequest(r: RequestRecord): void {
    this.#o.metrics?.requestCompleted(
      r.direction,
      r.source,
      r.destination,
      r.status,
      r.flags,
      r.durationMs / 1000,
      r.bytesIn,
      r.bytesOut,
    );
    const log = this.#accessLog;
    if (!log || (r.refused && !this.#listenerLogs)) return;
    // The agent's access log takes the record as it is (one template, no object per line).
    if (log.request) return log.request(r);
    log.info(
      {
        direction: r.direction,
        source_service: r.source,
        destination_service: r.destination,
        protocol: r.protocol,
        method: r.method,
        path: r.path,
        response_code: r.status,
        response_flags: r.flags,
        duration_ms: Math.round(r.durationMs * 1000) / 1000,
        bytes_in: r.bytesIn,
        bytes_out: r.bytesOut,
        upstream: r.upstream,
      },
      'request',
    );
  }

  #access(
    direction: 'inbound' | 'outbound',
    destination: string,
    source: string,
    started: number,
    stats: PipeStats,
    reason: Reason | undefined,
  ): void {
    this.#o.metrics?.connectionClosed(
      direction,
      source,
      destination,
      reason ?? '-',
      stats.bytesIn,
      stats.bytesOut,
    );
    this.#accessLog?.info(
      {
        direction,
        source_service: source,
        destination_service: destination,
        duration_ms: this.#o.clock.now() - started,
        bytes_in: stats.bytesIn,
        bytes_out: stats.bytesOut,
        ...(reason ? { response_flags: reason } : {}),
      },
      'tcp connection',
    );
  }
}

/**
 * The plan served when `next` could not open its listeners: `old`'s listeners and their
 * settings, with `next`'s certificates, roots, intentions and upstream endpoints, so a
 * revoked certificate or a new deny still takes effect on the listeners that serve.
 */
function keepListeners(old: ProxyPlan, next: ProxyPlan): ProxyPlan {
  const { acceptedTrustDomains: _old, ...rest } = old;
  return {
    ...rest,
    version: next.version,
    identity: next.identity,
    ...(next.acceptedTrustDomains ? { acceptedTrustDomains: next.acceptedTrustDomains } : {}),
    tls: next.tls,
    intentions: next.intentions,
    defaultAllow: next.defaultAllow,
    ...(next.accessLogs ? { accessLogs: next.accessLogs } : {}),
    upstreams: old.upstreams.map((u) => {
      const n = next.upstreams.find((x) => x.destination === u.destination);
      return n ? { ...u, identity: n.identity, endpoints: n.endpoints } : u;
    }),
  };
}

/** The connection-time decision, for TCP services. */
function l4Decision(plan: ProxyPlan, source: string): { allowed: boolean; reason: string } {
  return decide(plan.intentions, { source, destination: plan.service }, plan.defaultAllow);
}
