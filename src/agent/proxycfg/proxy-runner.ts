/**
 * Runs one sidecar's proxy inside the agent: watches its inputs (the destination's leaf, the
 * roots, the intentions, each upstream's healthy endpoints), compiles a plan whenever one
 * changes and every input is there, and hands it to the proxy, which swaps it atomically.
 * Inputs that stop updating (servers down) keep their last value: the proxy keeps serving
 * what it knows until its certificate expires.
 */
import type { CARoots, IssuedCert, ServiceEntry } from '../../api/index.js';
import type { TrellisClient } from '../../client/index.js';
import type { Clock } from '../../core/index.js';
import {
  type AccessLogTarget,
  ListenError,
  type ProxyHandle,
  type ProxyLogger,
} from '../../proxy/control.js';
import { dataPlane } from './data-plane.js';
import type { IntentionCache } from '../connect/intention-cache.js';
import type { LeafManager } from '../connect/leaf-manager.js';
import { connect, createServer } from 'node:net';
import type { SidecarCapture } from '../capture/types.js';
import type { VipSource } from '../capture/vip-watch.js';
import {
  buildPlan,
  resolveAccessLogs,
  resolveBalancer,
  resolveProtocol,
  type SidecarSpec,
} from './build-plan.js';
import type { PlanStore } from './plan-store.js';
import type { ProxyMetrics } from '../../telemetry/metrics.js';

export interface RunnerDeps {
  client: TrellisClient;
  leaves: LeafManager;
  intentions: IntentionCache;
  clock: Clock;
  log: ProxyLogger;
  /** One line per request or connection, for plans without `accessLogs` (default: `log`). */
  accessLog?: ProxyLogger;
  /** The access logger of a plan's target (proxy-defaults `AccessLogs`). */
  accessLogTo?: (target: AccessLogTarget) => ProxyLogger;
  /** Makes the proxy of sidecar `id` elsewhere (proxy workers); default: a ServiceProxy here. */
  newProxy?: (id: string) => ProxyHandle;
  /** The agent's own token, for sidecars registered without one. */
  agentToken: () => string | undefined;
  metrics?: ProxyMetrics;
  /** Where each proxy's last complete plan is kept for restarts without servers. */
  plans?: PlanStore;
  /** Called whenever the proxy's readiness changes (the sidecar's own health check). */
  onReady?: (sidecarId: string, ready: boolean, why: string) => void;
  /** The mesh's virtual IPs: a transparent sidecar gets an upstream listener per service. */
  vips?: VipSource;
  /** Called when a transparent sidecar's capture (listeners, addresses) changes. */
  onCapture?: (sidecarId: string) => void;
}

/**
 * The loopback addresses transparent upstream listeners bind: nft's `redirect` sends IPv4
 * connections to 127.0.0.1 and IPv6 ones to ::1, on the same port.
 */
const LOOPBACK = '127.0.0.1';
const LOOPBACK6 = '::1';

function listenOnce(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const a = srv.address();
      const bound = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(bound));
    });
  });
}

/** Whether this host has IPv6 loopback (it may be disabled). */
let hasLoopback6: Promise<boolean> | undefined;
function loopback6(): Promise<boolean> {
  hasLoopback6 ??= listenOnce(0, LOOPBACK6).then((p) => p !== undefined);
  return hasLoopback6;
}

/** A port free on 127.0.0.1 (and on ::1 when `v6`), chosen by the kernel. */
async function freeLoopbackPort(v6: boolean): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await listenOnce(0, LOOPBACK);
    if (port === undefined) break;
    if (!v6 || (await listenOnce(port, LOOPBACK6)) !== undefined) return port;
  }
  throw new Error('no free loopback port for a transparent upstream listener');
}

const APP_PROBE_INTERVAL_MS = 1000;
const APP_PROBE_TIMEOUT_MS = 2000;

/** Connects to `host:port` and closes at once: undefined when it accepted, else the error code. */
function tcpProbe(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(timeoutMs, () => s.destroy(new Error('timeout')));
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const WAIT = '5m';
const WAIT_MS = 5 * 60_000;

export class ProxyRunner {
  readonly spec: SidecarSpec;
  readonly proxy: ProxyHandle;
  readonly #d: RunnerDeps;
  readonly #stop = new AbortController();
  #leaf: IssuedCert | undefined;
  #endpoints = new Map<string, ServiceEntry[]>();
  #config = new Map<string, unknown>();
  #configKnown = new Set<string>();
  #version = 0;
  #loops: Promise<void>[] = [];
  #unsubscribe: (() => void) | undefined;
  #ready = false;
  #why = '';
  /** What the plan says: ready to serve, and why (or why not). */
  #planReady = false;
  #planWhy = '';
  /** Set while the local application refuses connections (the sidecar is then critical). */
  #appDown: string | undefined;
  #probing = false;
  /** A fresh plan has been installed (the saved one no longer matters). */
  #served = false;
  /** Until when the plan saved before the restart is being served (0: none). */
  #savedUntil = 0;
  #expiry: ReturnType<Clock['setTimeout']> | undefined;
  /** Transparent mode: one listener per mesh service, each with its own watches. */
  #implicit = new Map<string, { port: number; stop: AbortController }>();
  /** Listener ports a saved plan used, reused so restored nftables rules stay right. */
  #savedPorts = new Map<string, number>();
  #vipsKnown = false;
  #syncing: Promise<void> = Promise.resolve();
  #capture: SidecarCapture | undefined;
  /** Transparent listeners also bind ::1 (IPv6 destinations are redirected there). */
  #v6 = false;

  /** Retries a plan whose listener could not be opened (its port was taken). */
  #listenRetry: ReturnType<Clock['setTimeout']> | undefined;
  #listenFailures = 0;

  /**
   * `previous`: the runner of this sidecar's earlier definition. Its proxy is taken over,
   * listeners and plan included, and keeps serving until a plan of this definition replaces
   * it (make before break): if the new listeners cannot be opened, the old ones go on.
   */
  constructor(spec: SidecarSpec, deps: RunnerDeps, previous?: ProxyRunner) {
    this.spec = spec;
    this.#d = deps;
    this.proxy =
      previous?.proxy ??
      deps.newProxy?.(spec.id) ??
      new (dataPlane())({
        clock: deps.clock,
        log: deps.log,
        // With targets to pick from, a plan without `accessLogs` (one saved by an older agent)
        // logs nothing rather than through the proxy log.
        ...(deps.accessLog
          ? { accessLog: deps.accessLog }
          : deps.accessLogTo
            ? { accessLog: false as const }
            : {}),
        ...(deps.accessLogTo ? { accessLogTo: deps.accessLogTo } : {}),
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
      });
    this.proxy.onLocalAppUnreachable(() => this.#appSuspect());
    if (previous) {
      // Plans must keep increasing for the proxy to take them.
      this.#version = Math.max(previous.#version, previous.proxy.plan?.version ?? 0);
      // Transparent listeners keep their ports (the nftables rules point at them).
      for (const [dest, i] of previous.#implicit) this.#savedPorts.set(dest, i.port);
      this.#capture = previous.#capture;
    } else if (this.proxy.plan) {
      // The data plane (`trellis proxy`) kept serving this sidecar while the agent restarted.
      this.#version = this.proxy.plan.version;
      this.#kept = true;
    }
  }

  /** The proxy was already serving when this runner started (the agent restarted). */
  #kept = false;

  /** The transparent upstream listeners this runner has opened or is about to. */
  implicitListeners(): { address: string; port: number; what: string }[] {
    return [...this.#implicit].flatMap(([dest, i]) =>
      (this.#v6 ? [LOOPBACK, LOOPBACK6] : [LOOPBACK]).map((address) => ({
        address,
        port: i.port,
        what: `for "${dest}"`,
      })),
    );
  }

  /** Settles once the plan saved before a restart serves (or there is none to serve). */
  get restored(): Promise<void> {
    return this.#restoring;
  }

  #restoring: Promise<void> = Promise.resolve();

  start(): void {
    this.#setReady(false, 'waiting for a complete plan');
    this.#restoring = this.#serveSaved();
    this.#unsubscribe = this.#d.intentions.onChange(() => void this.#rebuild());
    this.#loops.push(this.#leafLoop(), this.#rootsLoop());
    for (const [kind, name] of this.#configWanted()) this.#loops.push(this.#configLoop(kind, name));
    for (const u of this.spec.upstreams) this.#loops.push(this.#endpointLoop(u.destination));
    const vips = this.#d.vips;
    if (this.spec.transparent && vips) {
      const sync = (): void => {
        this.#syncing = this.#syncing.then(() => this.#syncImplicit(vips));
      };
      const off = vips.onChange(sync);
      const prev = this.#unsubscribe;
      this.#unsubscribe = () => {
        prev?.();
        off();
      };
      if (vips.current()) sync();
    }
  }

  /** The capture of the plan being served (transparent sidecars only). */
  get capture(): SidecarCapture | undefined {
    return this.#capture;
  }

  /**
   * Keeps one upstream listener (and its endpoint and config watches) per mesh service with
   * a virtual IP, except this sidecar's own service.
   */
  async #syncImplicit(vips: VipSource): Promise<void> {
    const current = vips.current();
    if (!current || this.#stop.signal.aborted) return;
    this.#v6 = await loopback6();
    this.#vipsKnown = true;
    const wanted = new Set([...current.keys()].filter((s) => s !== this.spec.destination));
    for (const [dest, i] of [...this.#implicit]) {
      if (wanted.has(dest)) continue;
      i.stop.abort();
      this.#implicit.delete(dest);
      this.#endpoints.delete(dest);
    }
    for (const dest of wanted) {
      if (this.#implicit.has(dest)) continue;
      const port = this.#savedPorts.get(dest) ?? (await freeLoopbackPort(this.#v6));
      if (this.#stop.signal.aborted) return;
      const stop = new AbortController();
      const signal = AbortSignal.any([this.#stop.signal, stop.signal]);
      this.#implicit.set(dest, { port, stop });
      this.#loops.push(this.#endpointLoop(dest, signal));
      for (const [kind, name] of [
        ['service-defaults', dest],
        ['service-resolver', dest],
      ] as const)
        if (!this.#configWanted().some(([k, n]) => k === kind && n === name))
          this.#loops.push(this.#configLoop(kind, name, signal));
    }
    await this.#rebuild();
  }

  /** The spec with the transparent upstreams added (what the plan is built from). */
  #effectiveSpec(): SidecarSpec {
    if (!this.#implicit.size) return this.spec;
    return {
      ...this.spec,
      upstreams: [
        ...this.spec.upstreams,
        ...[...this.#implicit].flatMap(([destination, i]) =>
          (this.#v6 ? [LOOPBACK, LOOPBACK6] : [LOOPBACK]).map((bindAddress) => ({
            destination,
            bindAddress,
            bindPort: i.port,
          })),
        ),
      ],
    };
  }

  /** What nftables must do for the plan being installed (transparent sidecars only). */
  #captureOf(): SidecarCapture | undefined {
    const t = this.spec.transparent;
    if (!t) return undefined;
    const vips = this.#d.vips?.current();
    return {
      sidecarId: this.spec.id,
      service: this.spec.destination,
      settings: t,
      ...(this.spec.localApp.port > 0
        ? { inbound: { port: this.spec.localApp.port, toPort: this.spec.bindPort } }
        : {}),
      outbound: [...this.#implicit].map(([destination, i]) => {
        const vip = vips?.get(destination);
        const addresses = (this.#endpoints.get(destination) ?? []).flatMap((e) => {
          const port = e.Service.Proxy?.LocalServicePort ?? 0;
          const address = e.Service.Address || e.Node.Address;
          return port > 0 && address ? [{ address, port }] : [];
        });
        return { destination, toPort: i.port, ...(vip ? { vip } : {}), addresses };
      }),
    };
  }

  #setCapture(capture: SidecarCapture | undefined): void {
    if (JSON.stringify(capture) === JSON.stringify(this.#capture)) return;
    this.#capture = capture;
    this.#d.onCapture?.(this.spec.id);
  }

  /**
   * Stops the watches; the proxy too unless `handOver` (a runner of the sidecar's new
   * definition has taken it over).
   */
  async stop(opts: { handOver?: boolean } = {}): Promise<void> {
    await this.#stopWatching();
    if (!opts.handOver) await this.proxy.stop();
  }

  /**
   * Stops the watches (the plan in force stays) and drains the proxy: no new connections,
   * open exchanges finish for at most `timeoutMs`. Resolves with the connections cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    await this.#stopWatching();
    return this.proxy.drain(timeoutMs);
  }

  async #stopWatching(): Promise<void> {
    this.#stop.abort();
    if (this.#expiry) this.#d.clock.clearTimeout(this.#expiry);
    if (this.#listenRetry) this.#d.clock.clearTimeout(this.#listenRetry);
    this.#unsubscribe?.();
    await Promise.allSettled(this.#loops);
  }

  /** The plan saved before a restart, served until a fresh one is complete (fail static). */
  async #serveSaved(): Promise<void> {
    const stored = this.#d.plans?.load(this.spec.id, this.#specKey);
    const saved = stored?.plan;
    for (const d of stored?.capture?.outbound ?? []) this.#savedPorts.set(d.destination, d.toPort);
    const kept = this.#kept ? this.proxy.plan : undefined;
    if (kept && kept.tls.notAfter > this.#d.clock.now()) {
      // Serving, with nothing to restore: the plan in force counts as the saved one would.
      if (stored?.capture) this.#setCapture(stored.capture);
      this.#savedUntil = kept.tls.notAfter;
      this.#setReady(true, 'serving the plan in force before the agent restarted');
      this.#watchExpiry(kept.tls.notAfter);
      return;
    }
    if (!saved || saved.tls.notAfter <= this.#d.clock.now()) return;
    // A proxy taken over from the previous definition serves its plan until a fresh one.
    if (this.proxy.plan) return;
    this.#version = Math.max(this.#version, saved.version);
    try {
      await this.proxy.setPlan(saved);
      if (!this.#served && stored?.capture) this.#setCapture(stored.capture);
      if (this.#served) return;
      this.#savedUntil = saved.tls.notAfter;
      this.#setReady(true, 'serving the plan saved before the restart');
      this.#watchExpiry(saved.tls.notAfter);
    } catch (err) {
      this.#d.log.warn({ sidecar: this.spec.id, err: String(err) }, 'cannot serve the saved plan');
    }
  }

  /**
   * The config entries a plan depends on: protocols (service-defaults of this service and of
   * each upstream, proxy-defaults) and each upstream's service-resolver (its balancer).
   */
  #configWanted(): [string, string][] {
    const dests = [...new Set(this.spec.upstreams.map((u) => u.destination))];
    const wanted = new Map<string, [string, string]>();
    for (const [kind, name] of [
      ['proxy-defaults', 'global'],
      ['service-defaults', this.spec.destination],
      ...dests.flatMap((d) => [
        ['service-defaults', d],
        ['service-resolver', d],
      ]),
    ] as [string, string][])
      wanted.set(`${kind}/${name}`, [kind, name]);
    return [...wanted.values()];
  }

  get #specKey(): string {
    return JSON.stringify(this.spec);
  }

  async #leafLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const index = this.#leaf?.ModifyIndex ?? 0;
        const leaf = await this.#d.leaves.get(
          this.spec.destination,
          this.spec.token || this.#d.agentToken() || '',
          index,
          index ? WAIT_MS : 0,
          signal,
        );
        failures = 0;
        if (leaf.SerialNumber !== this.#leaf?.SerialNumber) {
          this.#leaf = leaf;
          await this.#rebuild();
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#setReady(false, `no certificate: ${String(err)}`);
        await this.#sleep(Math.min(30_000, 500 * 2 ** Math.min(failures++, 6)));
      }
    }
  }

  async #rootsLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let seen = -1;
    while (!signal.aborted) {
      await this.#d.leaves.waitRoots(seen, WAIT_MS, signal);
      if (signal.aborted) return;
      if (this.#d.leaves.rootsIndex !== seen) {
        seen = this.#d.leaves.rootsIndex;
        await this.#rebuild();
      } else await this.#sleep(1000);
    }
  }

  /** Watches one config entry the protocol depends on (absent is an answer too: null). */
  async #configLoop(kind: string, name: string, signal = this.#stop.signal): Promise<void> {
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const r = await this.#d.client.configEntries.get(kind, name, { index, wait: WAIT, signal });
        failures = 0;
        index = r.index < index ? 0 : r.index;
        const key = `${kind}/${name}`;
        const before = JSON.stringify(this.#config.get(key) ?? null);
        this.#config.set(key, r.value);
        if (JSON.stringify(r.value) !== before || !this.#configKnown.has(key)) {
          this.#configKnown.add(key);
          await this.#rebuild();
        }
      } catch {
        if (signal.aborted) return;
        await this.#sleep(Math.min(30_000, 200 * 2 ** Math.min(failures++, 8)));
      }
    }
  }

  async #endpointLoop(destination: string, signal = this.#stop.signal): Promise<void> {
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const r = await this.#d.client.health.connect(destination, {
          passing: true,
          index,
          wait: WAIT,
          signal,
        });
        failures = 0;
        if (signal.aborted) return;
        if (r.index < index) index = 0;
        else index = r.index;
        this.#endpoints.set(destination, r.value);
        await this.#rebuild();
      } catch {
        if (signal.aborted) return;
        await this.#sleep(Math.min(30_000, 200 * 2 ** Math.min(failures++, 8)));
      }
    }
  }

  /** Compiles and installs a plan when every input is there. */
  async #rebuild(): Promise<void> {
    const roots: CARoots | undefined = this.#d.leaves.roots;
    const leaf = this.#leaf;
    const cache = this.#d.intentions;
    const missing = !roots
      ? 'no CA roots yet'
      : !leaf
        ? 'no certificate yet'
        : !cache.ready
          ? 'no intentions yet'
          : this.spec.upstreams.find((u) => !this.#endpoints.has(u.destination))
            ? 'upstream endpoints not known yet'
            : this.spec.transparent && this.#d.vips && !this.#vipsKnown
              ? 'the mesh virtual IPs are not known yet'
              : this.#configKnown.size < this.#configWanted().length
                ? 'config entries (service-defaults, proxy-defaults, resolvers) not known yet'
                : undefined;
    if (missing || !roots || !leaf) {
      // While the saved plan serves (fail static), the inputs of a fresh one come back one by
      // one once the servers do: the sidecar stays passing meanwhile, or its callers would be
      // turned away from a proxy that serves.
      if (!this.#served && this.#savedUntil > this.#d.clock.now()) return;
      this.#setReady(false, missing ?? 'incomplete');
      return;
    }
    // A transparent upstream whose endpoints are still coming: keep serving the current plan
    // (a new mesh service must not flap every transparent sidecar's health).
    const pending = [...this.#implicit.keys()].some((d) => !this.#endpoints.has(d));
    if (pending) {
      const savedServing = this.#savedUntil > this.#d.clock.now();
      if (!this.#served && !savedServing)
        this.#setReady(false, 'transparent upstream endpoints not known yet');
      return;
    }
    const plan = buildPlan(
      {
        spec: this.#effectiveSpec(),
        roots,
        leaf,
        defaultAllow: cache.defaultAllow,
        intentions: cache.intentions,
        endpoints: this.#endpoints,
        protocolOf: (svc) =>
          resolveProtocol(
            this.#config.get(`service-defaults/${svc}`) as { Protocol?: unknown } | null,
            this.#config.get('proxy-defaults/global') as { Config?: { protocol?: unknown } } | null,
          ),
        balancerOf: (svc) =>
          resolveBalancer(
            this.#config.get(`service-resolver/${svc}`) as {
              LoadBalancer?: { Policy?: unknown };
            } | null,
          ),
        accessLogs: resolveAccessLogs(
          this.#config.get('proxy-defaults/global') as {
            AccessLogs?: Record<string, unknown>;
          } | null,
        ),
      },
      ++this.#version,
    );
    try {
      await this.proxy.setPlan(plan);
      if (this.#stop.signal.aborted) return;
      this.#listenFailures = 0;
      this.#served = true;
      const capture = this.#captureOf();
      this.#d.plans?.save(this.spec.id, this.#specKey, plan, capture);
      this.#setCapture(capture);
      this.#setReady(true, 'listening with a plan and a valid certificate');
      this.#watchExpiry(plan.tls.notAfter);
    } catch (err) {
      if (this.#stop.signal.aborted) return;
      if (!(err instanceof ListenError)) {
        this.#setReady(false, `cannot serve the plan: ${String(err)}`);
        return;
      }
      // The proxy kept what it served (make before break): say so, and try again later, as
      // whatever holds the port may let it go.
      const serving = this.proxy.plan;
      const still = serving
        ? `; the previous listeners (port ${serving.inbound.bindPort}) keep serving the previous configuration`
        : '';
      this.#setReady(false, `${err.message}${still}`);
      this.#d.log.warn({ sidecar: this.spec.id, err: err.message }, 'cannot open a listener');
      this.#retryListen();
    }
  }

  #retryListen(): void {
    if (this.#listenRetry) return;
    const ms = Math.min(30_000, 1000 * 2 ** Math.min(this.#listenFailures++, 5));
    this.#listenRetry = this.#d.clock.setTimeout(() => {
      this.#listenRetry = undefined;
      void this.#rebuild();
    }, ms);
  }

  /**
   * The proxy refuses everything once its certificate expires (renewal failed, servers gone):
   * the sidecar's check must then say so, so no one routes to it.
   */
  #watchExpiry(notAfter: number): void {
    if (this.#expiry) this.#d.clock.clearTimeout(this.#expiry);
    const ms = Math.max(0, notAfter - this.#d.clock.now());
    this.#expiry = this.#d.clock.setTimeout(
      () => this.#setReady(false, 'the certificate has expired; refusing all traffic'),
      Math.min(ms, 2 ** 31 - 1),
    );
  }

  /**
   * The proxy could not reach its application: probe its port now and every second until it
   * accepts a connection again, the sidecar critical meanwhile, so callers stop choosing this
   * instance within one catalog update instead of until someone notices.
   */
  #appSuspect(): void {
    if (this.#probing || this.#stop.signal.aborted) return;
    const { address, port } = this.spec.localApp;
    if (!(port > 0)) return;
    this.#probing = true;
    void (async () => {
      try {
        while (!this.#stop.signal.aborted) {
          const err = await tcpProbe(address, port, APP_PROBE_TIMEOUT_MS);
          if (err === undefined) {
            if (this.#appDown !== undefined) {
              this.#appDown = undefined;
              this.#d.log.info({ sidecar: this.spec.id }, 'local application reachable again');
              this.#report();
            }
            return;
          }
          if (this.#appDown === undefined) {
            this.#appDown = `the local application at ${address}:${port} does not accept connections (${err})`;
            this.#d.log.warn(
              { sidecar: this.spec.id, why: this.#appDown },
              'local application down',
            );
            this.#report();
          }
          await this.#sleep(APP_PROBE_INTERVAL_MS);
        }
      } finally {
        this.#probing = false;
      }
    })();
  }

  #setReady(ready: boolean, why: string): void {
    this.#planReady = ready;
    this.#planWhy = why;
    this.#report();
  }

  /** The sidecar's health: the plan's readiness, unless the application is down. */
  #report(): void {
    // A stopped runner no longer speaks for the sidecar (its successor may).
    if (this.#stop.signal.aborted) return;
    const ready = this.#planReady && this.#appDown === undefined;
    const why = this.#planReady ? (this.#appDown ?? this.#planWhy) : this.#planWhy;
    if (ready === this.#ready && why === this.#why) return;
    this.#ready = ready;
    this.#why = why;
    this.#d.onReady?.(this.spec.id, ready, why);
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    const clock = this.#d.clock;
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clock.clearTimeout(t);
        resolve();
      };
      const t = clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
