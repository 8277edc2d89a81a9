/**
 * The per-host agent's composition root.
 *
 *   config dir + data dir --> LocalState <--- /v1/agent/* (local API)
 *                               |   ^
 *               CheckScheduler -+   | results
 *                               v
 *                   AntiEntropy --> servers (catalog)      Heartbeat --> servers (liveness)
 *
 * Services registered through the API are kept in the data dir, so they survive a restart;
 * those from the config dir are re-read at start and on reload (SIGHUP). A service with
 * `connect { sidecar_service {} }` brings its sidecar proxy as a second local service; the
 * ports assigned to sidecars are kept in the data dir too, so a restart does not move them.
 */
import { ConfigLoadError } from './config-load-error.js';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  normalizeCheckType,
  normalizeServiceRegistration,
  type CheckRegistration,
  type ServiceRegistration,
} from '../api/index.js';
import { createClient, type TlsOptions, type TrellisClient } from '../client/index.js';
import type { CARoots } from '../api/index.js';
import { remoteTokenResolver, type TokenResolver } from './acl/token-resolver.js';
import { LeafManager } from './connect/leaf-manager.js';
import { ProxyManager } from './proxycfg/manager.js';
import { RedirectManager } from './capture/redirect-manager.js';
import { lookupUid } from './capture/users.js';
import { VipWatch } from './capture/vip-watch.js';
import type { SidecarCapture } from './capture/types.js';
import { NftApplier, type NftOptions } from './nftables/nft.js';
import { createRegistry, proxyMetrics, type Registry } from '../telemetry/metrics.js';
import {
  DataPlaneClient,
  mergedMetrics,
  ProxyWorkers,
  type AccessLogTarget,
} from '../proxy/control.js';
import { loadDataPlane } from './proxycfg/data-plane.js';
import { filePlanStore } from './proxycfg/plan-store.js';
import { IntentionCache } from './connect/intention-cache.js';
import { loadConfigDir, formatDiagnostic } from '../config/index.js';
import {
  badRequest,
  describeError,
  MeshError,
  type Clock,
  type Random,
  makeDirs,
} from '../core/index.js';
import { CheckScheduler } from './checks/index.js';
import { LocalState } from './local/local-state.js';
import { NODE_MAINT_CHECK_ID } from '../api/types.js';
import { expandSidecar, sidecarID, validateProxy, type ReservedListener } from './local/sidecar.js';
import { AntiEntropy, type NodeInfo } from './sync/anti-entropy.js';
import { Heartbeat } from './sync/heartbeat.js';

export interface AgentLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AgentOptions {
  node: NodeInfo;
  /** Where proxies log refusals and failures (default: `log`). */
  proxyLog?: AgentLogger;
  /**
   * Where proxies write one line per request or connection when proxy-defaults `AccessLogs`
   * enables it, by its target (stdout, stderr or a file). Without it the proxy log is used.
   */
  accessLogTo?: (target: AccessLogTarget) => AgentLogger;
  /**
   * Sidecar proxies run in this many worker processes sharing the listening sockets
   * (`proxy_workers`); 0 or absent: in the agent's own process.
   */
  proxyWorkers?: { count: number; logLevel: string };
  /**
   * Sidecar proxies run in the data-plane supervisor (`trellis proxy`) answering on this unix
   * socket, which outlives the agent: restarting the agent drops no connection. `proxyWorkers`
   * is then not used (the supervisor has its own).
   */
  dataPlane?: { socketPath: string; version: string; connectTimeoutMs?: number };
  servers: string[];
  dataDir: string;
  configDir?: string;
  clock: Clock;
  random: Random;
  log: AgentLogger;
  enableScriptChecks?: boolean;
  syncIntervalMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  /** True when this agent runs inside a server process (its node is the server's). */
  server?: boolean;
  /** The agent's own token: node registration, heartbeats, services without a token. */
  token?: string;
  /** TLS to the servers (a joined agent: its certificate and the mesh roots). */
  tls?: TlsOptions;
  /** Told when the CA roots change (a joined agent updates the roots it trusts servers by). */
  onRoots?: (roots: CARoots) => void;
  /** Decides local API requests; default: ask the servers (cached). */
  tokenResolver?: TokenResolver;
  /** Transparent capture with nftables (used only when a sidecar is in transparent mode). */
  redirect?: RedirectSettings;
  /** The agent's own listeners known before it starts (configured, non-zero ports). */
  listeners?: ReservedListener[];
}

export interface RedirectSettings {
  /** The agent's uid (its proxies' traffic is never captured). */
  proxyUid: number;
  /** The agent's DNS port on 127.0.0.1, for `redirect_dns`. */
  dnsPort?: number;
  /** The agent's own ports: never redirected inbound. */
  agentPorts: number[];
  nft?: NftOptions;
  driftEveryMs?: number;
}

interface Persisted {
  services: ServiceRegistration[];
  checks: CheckRegistration[];
  /** Service id -> the ACL token it was registered with (the file is mode 0600). */
  tokens?: Record<string, string>;
  /** Sidecar id -> the id of the service it fronts, for the sidecars among `services`. */
  sidecars?: Record<string, string>;
  /** Sidecar id -> its port, for every sidecar (config-dir ones too), kept across restarts. */
  sidecarPorts?: Record<string, number>;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The maintenance reason a drain sets; an agent that starts again clears it. */
export const DRAIN_REASON = 'Trellis agent draining: this host is stopping or restarting';
/** How long a drain waits for the catalog to take the maintenance check, at most. */
const MARK_TIMEOUT_MS = 5_000;

export interface DrainResult {
  /** The catalog took the maintenance check (callers were told) before the grace began. */
  marked: boolean;
  /** Connections still open at the time limit, which were cut. */
  cut: number;
}

/** `p`'s value, or `fallback` after `ms`. */
function within<T>(clock: Clock, p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(fallback), ms);
    void p.then((v) => {
      clock.clearTimeout(timer);
      resolve(v);
    });
  });
}

export { ConfigLoadError };

export class TrellisAgent {
  readonly opts: AgentOptions;
  readonly client: TrellisClient;
  readonly local: LocalState;
  readonly checks: CheckScheduler;
  readonly sync: AntiEntropy;
  readonly heartbeat: Heartbeat;
  readonly resolveToken: TokenResolver;
  /** The servers' ACL default policy, as last learned while resolving a token. */
  aclDefaultPolicy = 'allow';
  readonly leaves: LeafManager;
  /** The proxies of this host's sidecar services, run in this process. */
  readonly proxies: ProxyManager;
  /** Prometheus metrics of this agent and its in-process proxies (see metricsView). */
  readonly metrics: Registry;
  /** The processes carrying the sidecars' traffic, when `proxy_workers` is set. */
  readonly proxyWorkers: ProxyWorkers | undefined;
  /** The data-plane supervisor carrying the sidecars' traffic, when `data_plane_socket` is set. */
  readonly dataPlane: DataPlaneClient | undefined;

  /**
   * The metrics to expose (GET /v1/agent/metrics, the Prometheus listener): the agent's own,
   * merged with its proxy workers' when it has any.
   */
  async metricsView(): Promise<Registry> {
    const carriers = this.dataPlane ?? this.proxyWorkers;
    if (!carriers) return this.metrics;
    return mergedMetrics(await this.metrics.getMetricsAsJSON(), carriers);
  }
  /** Every intention, kept current from the servers: connect authorization without a round trip. */
  readonly intentions: IntentionCache;
  readonly startedAt: number;
  /** The mesh's virtual IPs, shared by the transparent sidecars. */
  readonly vips: VipWatch;
  /** The host's nftables capture (undefined: the agent was started without it). */
  readonly redirect: RedirectManager | undefined;
  #persistFile: string;
  #loading = false;
  /** --server / retry_join, then those /v1/agent/join added (kept in memory only). */
  readonly #servers: string[];
  /** The agent's own listeners (API, DNS, metrics): no proxy may listen on their ports. */
  readonly #listeners: ReservedListener[];

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.startedAt = opts.clock.now();
    makeDirs(opts.dataDir, 0o700);
    this.#persistFile = join(opts.dataDir, 'local-services.json');
    this.#servers = [...opts.servers];
    this.#listeners = [];
    for (const l of opts.listeners ?? []) this.addListener(l);
    this.client = createClient({
      addresses: opts.servers,
      clock: opts.clock,
      ...(opts.token ? { token: opts.token } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
    });
    const resolve = opts.tokenResolver ?? remoteTokenResolver(this.client, opts.clock);
    this.resolveToken = async (secret) => {
      const a = await resolve(secret);
      this.aclDefaultPolicy = a.defaultPolicy;
      return a;
    };
    this.intentions = new IntentionCache({ client: this.client, clock: opts.clock, log: opts.log });
    this.leaves = new LeafManager({
      client: this.client,
      node: opts.node.node,
      datacenter: opts.node.datacenter,
      agentToken: () => this.opts.token,
      dataDir: opts.dataDir,
      clock: opts.clock,
      random: opts.random,
      log: opts.log,
      ...(opts.onRoots ? { onRoots: opts.onRoots } : {}),
    });
    this.metrics = createRegistry({ processMetrics: true });
    this.vips = new VipWatch(this.client, opts.clock);
    this.redirect = opts.redirect
      ? new RedirectManager({
          applier: new NftApplier(opts.redirect.nft ?? {}),
          stateFile: join(opts.dataDir, 'redirect', 'state.json'),
          proxyUid: opts.redirect.proxyUid,
          agentPorts: opts.redirect.agentPorts,
          ...(opts.redirect.dnsPort !== undefined ? { dnsPort: opts.redirect.dnsPort } : {}),
          ...(opts.redirect.driftEveryMs ? { driftEveryMs: opts.redirect.driftEveryMs } : {}),
          lookupUid,
          clock: opts.clock,
          log: opts.log,
          // A transparent sidecar whose capture is not in force is not healthy: its check says so.
          onError: () => {
            for (const id of this.#listening.keys()) this.#setSidecarCheck(id);
          },
        })
      : undefined;
    this.dataPlane = opts.dataPlane
      ? new DataPlaneClient({
          socketPath: opts.dataPlane.socketPath,
          version: opts.dataPlane.version,
          clock: opts.clock,
          log: opts.log,
          ...(opts.dataPlane.connectTimeoutMs !== undefined
            ? { connectTimeoutMs: opts.dataPlane.connectTimeoutMs }
            : {}),
        })
      : undefined;
    const workers =
      !opts.dataPlane && opts.proxyWorkers && opts.proxyWorkers.count > 0
        ? new ProxyWorkers({
            count: opts.proxyWorkers.count,
            log: opts.log,
            logLevel: opts.proxyWorkers.logLevel,
            clock: opts.clock,
          })
        : undefined;
    this.proxyWorkers = workers;
    this.proxies = new ProxyManager(
      {
        client: this.client,
        leaves: this.leaves,
        intentions: this.intentions,
        clock: opts.clock,
        log: opts.proxyLog ?? opts.log,
        ...(opts.accessLogTo ? { accessLogTo: opts.accessLogTo } : {}),
        ...(this.dataPlane
          ? { newProxy: (id: string) => this.dataPlane!.handle(id) }
          : workers
            ? { newProxy: (id: string) => workers.handle(id) }
            : {}),
        agentToken: () => this.opts.token,
        metrics: proxyMetrics(this.metrics),
        plans: filePlanStore(join(opts.dataDir, 'proxy-plans'), (o, m) => opts.log.warn(o, m)),
        // The sidecar's "Connect Sidecar Listening" check tells whether its proxy can serve.
        onReady: (id, ready, why) => {
          this.#listening.set(id, { ready, why });
          this.#setSidecarCheck(id);
        },
        vips: this.vips,
        onCapture: () => this.#updateCapture(),
      },
      opts.node.datacenter,
    );
    this.checks = new CheckScheduler({
      clock: opts.clock,
      random: opts.random,
      enableScriptChecks: opts.enableScriptChecks ?? false,
      onChange: (id, r) => this.local.setCheckStatus(id, r.status, r.output),
      aliasSource: (id) => this.local.aliasTarget(id, opts.node.node),
    });
    this.local = new LocalState(
      {
        start: (id, def, status) => {
          this.checks.add(id, def, status);
        },
        stop: (id) => {
          this.checks.remove(id);
        },
      },
      () => this.#onLocalChange(),
    );
    this.local.reserved = () => this.#reservedListeners();
    this.sync = new AntiEntropy({
      client: this.client,
      local: this.local,
      node: opts.node,
      clock: opts.clock,
      random: opts.random,
      intervalMs: opts.syncIntervalMs ?? 60_000,
      protectedServices: opts.server ? ['consul'] : [],
      log: opts.log,
    });
    this.heartbeat = new Heartbeat({
      client: this.client,
      node: opts.node,
      clock: opts.clock,
      intervalMs: opts.heartbeatIntervalMs ?? 2_000,
      ttlMs: opts.heartbeatTtlMs ?? 10_000,
      log: opts.log,
    });
  }

  #onLocalChange(): void {
    // Alias checks (a sidecar's) follow the service they alias.
    this.checks.refreshAliases();
    // Wake hash-blocking reads of the local API (even while loading: they read local state).
    const waiters = this.#changeWaiters;
    this.#changeWaiters = [];
    for (const w of waiters) w();
    if (this.#loading) return;
    this.#persist();
    this.sync.trigger();
    void this.#reconcileProxies();
  }

  #reconcileProxies(): Promise<void> {
    if (this.opts.servers.length === 0) return Promise.resolve();
    const sidecars = [...this.local.services.values()].map((e) => ({
      service: e.service,
      ...(e.token ? { token: e.token } : {}),
    }));
    return this.proxies
      .reconcile(sidecars)
      .then(() => this.#updateCapture())
      .catch((err: unknown) =>
        this.opts.log.warn({ err: describeError(err) }, 'could not start or stop a proxy'),
      );
  }

  #changeWaiters: (() => void)[] = [];

  /**
   * Records a listener the agent opened (the API's, DNS's or metrics' bound address, known
   * only once bound when the port was 0): proxies registered from now on may not use it.
   */
  addListener(l: ReservedListener): void {
    if (!(l.port > 0)) return;
    const address = l.address === 'localhost' ? '127.0.0.1' : l.address;
    if (this.#listeners.some((x) => x.port === l.port && x.address === address)) return;
    this.#listeners.push({ ...l, address });
  }

  /** The agent's own listeners and its transparent sidecars' upstream listeners. */
  *#reservedListeners(): Iterable<ReservedListener> {
    yield* this.#listeners;
    for (const [id, { runner }] of this.proxies.runners)
      for (const l of runner.implicitListeners())
        yield { ...l, what: `the transparent upstream listener ${l.what} of proxy "${id}"` };
  }

  /** The server addresses this agent fails over between. */
  get servers(): readonly string[] {
    return this.#servers;
  }

  /**
   * `PUT /v1/agent/join/:address`: adds a server to fail over to, once it has answered for this
   * datacenter (its catalog lists it); false when it was already one of the agent's servers.
   * There is no gossip: joining tells this agent where a server is, nothing more.
   */
  async addServer(address: string): Promise<boolean> {
    if (this.opts.server)
      throw badRequest(
        'this agent runs inside a server, which answers its own catalog: servers do not join other servers',
        'address',
      );
    const probe = createClient({
      addresses: [address],
      clock: this.opts.clock,
      timeoutMs: 5_000,
      ...(this.opts.token ? { token: this.opts.token } : {}),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
    });
    let datacenters: unknown;
    try {
      datacenters = (await probe.request({ method: 'GET', path: '/v1/catalog/datacenters' })).body;
    } catch (err) {
      throw new MeshError(
        'MESH_ERR_JOIN',
        'peer',
        `cannot join ${address}: ${describeError(err)}`,
        {
          status: 502,
          cause: err,
        },
      );
    } finally {
      await probe.close();
    }
    const dc = this.opts.node.datacenter;
    if (!Array.isArray(datacenters) || !datacenters.includes(dc))
      throw new MeshError(
        'MESH_ERR_JOIN',
        'peer',
        `cannot join ${address}: it does not serve datacenter "${dc}" (it answered ${JSON.stringify(datacenters).slice(0, 100)})`,
        { status: 502 },
      );
    if (!this.client.addAddress(address)) return false;
    this.#servers.push(address);
    this.opts.log.info({ server: address }, 'joined a server');
    return true;
  }

  /** Each sidecar proxy's own readiness, as it last reported it. */
  readonly #listening = new Map<string, { ready: boolean; why: string }>();

  /** The sidecar's check: its proxy's readiness, and for a transparent one, its capture's. */
  #setSidecarCheck(id: string): void {
    const l = this.#listening.get(id);
    if (!l) return;
    const runner = this.proxies.runners.get(id)?.runner;
    const captureError = runner?.spec.transparent ? this.redirect?.error : undefined;
    // Critical only while the rules in force do not capture for it: a failed change that
    // leaves an older ruleset covering this sidecar has not broken it.
    if (captureError !== undefined && !this.redirect!.covers(runner!.capture))
      this.local.setSidecarListening(id, 'critical', `transparent capture failed: ${captureError}`);
    else this.local.setSidecarListening(id, l.ready ? 'passing' : 'critical', l.why);
  }

  /** Hands the transparent sidecars' captures to the nftables manager. */
  #updateCapture(): void {
    if (!this.redirect) return;
    const captures: SidecarCapture[] = [];
    let expected = 0;
    for (const { runner } of this.proxies.runners.values()) {
      if (!runner.spec.transparent) continue;
      expected++;
      if (runner.capture) captures.push(runner.capture);
    }
    this.redirect.update(captures, expected);
  }

  /** Resolves at the next change of local state, after `ms`, or when `signal` aborts. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.opts.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#changeWaiters = this.#changeWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = this.opts.clock.setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#changeWaiters.push(done);
    });
  }

  /** Loads persisted and config-dir definitions; throws ConfigLoadError on any file error. */
  async start(): Promise<void> {
    // The data plane first: the plans it serves are taken over, not started again.
    if (this.dataPlane) await this.dataPlane.connect();
    // Proxies in this process (no workers): their code is loaded now, before any can start.
    else if (!this.proxyWorkers) await loadDataPlane();
    // The saved ruleset first, before any proxy listens: captured traffic is refused, never
    // sent in plaintext, while the proxies come up.
    await this.redirect?.start();
    this.#loading = true;
    try {
      const saved = this.#readPersisted();
      await this.#loadConfigDir({
        ports: saved?.sidecarPorts ?? {},
        returning: new Set(Object.keys(saved?.sidecars ?? {})),
      });
      if (saved) this.#loadPersisted(saved);
      // A drain before the restart put the node in maintenance; the restarted agent serves.
      if (this.local.checks.get(NODE_MAINT_CHECK_ID)?.check.Notes === DRAIN_REASON)
        this.local.setNodeMaintenance(false, '');
    } finally {
      this.local.sidecarPortHints.clear();
      this.#loading = false;
    }
    this.heartbeat.start();
    this.sync.start();
    this.leaves.start();
    if (this.opts.servers.length > 0) this.intentions.start();
    await this.#reconcileProxies();
  }

  /**
   * Settles once what the agent restored at start is in force: the saved nftables ruleset
   * (start() applies it) and every sidecar's saved plan, served by its proxy. Readiness
   * (systemd's READY=1) waits for it, so a host reported ready never refuses captured traffic.
   */
  async restored(): Promise<void> {
    await this.proxies.restored();
    // Proxies the data plane kept for sidecars this host no longer has (removed while the
    // agent was down) stop now.
    for (const id of this.dataPlane?.untaken() ?? []) {
      this.opts.log.info({ sidecar: id }, 'stopping a kept proxy whose sidecar is gone');
      await this.dataPlane?.stopUntaken(id);
    }
  }

  /**
   * `remembered`: at start, the sidecar ports saved before the restart, and the saved
   * (API-registered) sidecars that come back; those and the files' sidecars keep their ports.
   */
  async #loadConfigDir(remembered?: {
    ports: Record<string, number>;
    returning: ReadonlySet<string>;
  }): Promise<void> {
    if (!this.opts.configDir) return;
    const defs = await loadConfigDir(this.opts.configDir);
    if (defs.errors.length > 0) throw new ConfigLoadError(defs.errors.map(formatDiagnostic));
    const services = defs.services.map((s, i) => normalizeServiceRegistration(s, `services[${i}]`));
    const checks = defs.checks.map((c, i) => ({
      ...normalizeCheckType(c, `checks[${i}]`),
      Name: c.Name,
      ...(c.ID ? { ID: c.ID } : {}),
    }));
    // Refuse the whole set before changing anything if any check cannot run here.
    if (!this.opts.enableScriptChecks) {
      const owners = services.flatMap((s) => [
        s,
        ...(s.Connect?.SidecarService ? [s.Connect.SidecarService] : []),
      ]);
      const all = [
        ...owners.flatMap((s) => [...(s.Check ? [s.Check] : []), ...(s.Checks ?? [])]),
        ...checks,
      ];
      const script = all.find((c) => c.ScriptArgs);
      if (script)
        throw new ConfigLoadError([
          `script check "${script.CheckID ?? script.Name ?? ''}" is defined but script checks are disabled (start the agent with --enable-script-checks)`,
        ]);
    }
    // Sidecar definitions that can never be registered, whatever the ports: refuse them too.
    const invalid: string[] = [];
    for (const s of services) {
      try {
        expandSidecar(s, { used: new Set() });
        validateProxy(s);
      } catch (err) {
        invalid.push(`service "${s.ID || s.Name}": ${messageOf(err)}`);
      }
    }
    if (invalid.length > 0) throw new ConfigLoadError(invalid);
    // Replace the file-sourced set: drop what the files no longer define, then (re)add.
    const wanted = new Set(
      services.flatMap((s) => {
        const id = s.ID || s.Name;
        return s.Connect?.SidecarService ? [id, sidecarID(id)] : [id];
      }),
    );
    // The set as a whole, before anything changes: a listener clash (with another proxy of
    // this agent, in the files or registered through the API, or with the agent's own
    // listeners) refuses the load and the running services stay as they are.
    try {
      this.local.checkServiceSet(services, (id, e) => e.source === 'file' || wanted.has(id));
    } catch (err) {
      const s = services[(err as { index?: number }).index ?? 0];
      throw new ConfigLoadError([`service "${s ? s.ID || s.Name : '?'}": ${messageOf(err)}`]);
    }
    // Replaced below one by one: until its turn, an old file service's listeners are not a
    // clash for the new ones (the set was checked as a whole above).
    const replacing = new Set(
      [...this.local.services].filter(([, e]) => e.source === 'file').map(([id]) => id),
    );
    for (const [id, e] of [...this.local.services])
      if (e.source === 'file' && !wanted.has(id) && this.local.services.has(id)) {
        this.local.removeService(id);
        replacing.delete(id);
      }
    for (const [id, port] of Object.entries(remembered?.ports ?? {}))
      if (wanted.has(id) || remembered?.returning.has(id))
        this.local.sidecarPortHints.set(id, port);
    const wantedChecks = new Set(checks.map((c) => c.ID || c.CheckID || c.Name));
    for (const [id, e] of [...this.local.checks])
      if (e.source === 'file' && !e.ownedByService && !wantedChecks.has(id))
        this.local.removeCheck(id);
    // Token is not part of a registration (it never reaches the catalog); keep it beside it.
    services.forEach((s, i) => {
      const token = (defs.services[i] as { Token?: unknown }).Token;
      try {
        this.local.addService(
          s,
          'file',
          true,
          typeof token === 'string' && token ? token : undefined,
          { replacing },
        );
        const id = s.ID || s.Name;
        replacing.delete(id);
        replacing.delete(sidecarID(id));
      } catch (err) {
        // e.g. no sidecar port left: name the service, as a file error would.
        throw new ConfigLoadError([`service "${s.ID || s.Name}": ${messageOf(err)}`]);
      }
    });
    for (const c of checks) this.local.addCheck(c as CheckRegistration, 'file');
  }

  #readPersisted(): Persisted | undefined {
    if (!existsSync(this.#persistFile)) return undefined;
    try {
      return JSON.parse(readFileSync(this.#persistFile, 'utf8')) as Persisted;
    } catch (err) {
      this.opts.log.error(
        { file: this.#persistFile, err: describeError(err) },
        'cannot read saved local services; starting without them',
      );
      return undefined;
    }
  }

  #loadPersisted(saved: Persisted): void {
    const sidecars = saved.sidecars ?? {};
    const sidecarOf = (s: ServiceRegistration): string | undefined => sidecars[s.ID ?? s.Name];
    // Services first, then the sidecars of those that are back.
    const all = saved.services ?? [];
    const ordered = [...all.filter((s) => !sidecarOf(s)), ...all.filter((s) => sidecarOf(s))];
    for (const s of ordered) {
      try {
        const reg = normalizeServiceRegistration(s);
        const parent = sidecarOf(s);
        if (parent !== undefined && !this.local.services.has(parent)) continue;
        this.local.addService(
          reg,
          'api',
          true,
          saved.tokens?.[reg.ID ?? reg.Name],
          parent !== undefined ? { sidecarOf: parent } : {},
        );
      } catch (err) {
        this.opts.log.warn(
          { service: s.ID ?? s.Name, err: describeError(err) },
          'skipping saved service',
        );
      }
    }
    for (const c of saved.checks ?? []) {
      try {
        this.local.addCheck(c, 'api');
      } catch (err) {
        this.opts.log.warn(
          { check: c.ID ?? c.Name, err: describeError(err) },
          'skipping saved check',
        );
      }
    }
  }

  /** Writes API-registered definitions atomically (temp file + rename). */
  #persist(): void {
    const services: ServiceRegistration[] = [];
    const tokens: Record<string, string> = {};
    const sidecars: Record<string, string> = {};
    const sidecarPorts: Record<string, number> = {};
    for (const e of this.local.services.values()) {
      if (e.sidecarOf) sidecarPorts[e.service.ID] = e.service.Port;
      if (e.source !== 'api') continue;
      services.push(e.registration);
      if (e.token) tokens[e.service.ID] = e.token;
      if (e.sidecarOf) sidecars[e.service.ID] = e.sidecarOf;
    }
    const checks: CheckRegistration[] = [];
    for (const e of this.local.checks.values())
      if (e.source === 'api' && e.registration) checks.push(e.registration);
    const tmp = `${this.#persistFile}.tmp`;
    try {
      const saved: Persisted = { services, checks, tokens, sidecars, sidecarPorts };
      writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 });
      renameSync(tmp, this.#persistFile);
    } catch (err) {
      this.opts.log.error(
        { file: this.#persistFile, err: describeError(err) },
        'cannot save local services',
      );
    }
  }

  /** Re-reads the config dir (SIGHUP); on any error the running configuration stays. */
  async reload(): Promise<void> {
    if (this.opts.configDir) {
      const defs = await loadConfigDir(this.opts.configDir);
      if (defs.errors.length > 0) throw new ConfigLoadError(defs.errors.map(formatDiagnostic));
    }
    await this.#loadConfigDir();
    this.opts.log.info({ configDir: this.opts.configDir }, 'configuration reloaded');
  }

  /**
   * Drains this host before the agent stops or restarts: its services go critical in the
   * catalog (node maintenance, as `consul maint` does), so callers' proxies move their traffic
   * to other endpoints; the sidecars keep serving for `graceMs` while callers' plans follow the
   * catalog, then stop accepting and let open exchanges finish. Everything ends within
   * `timeoutMs`; connections still open then are cut. The proxies are stopped afterwards.
   */
  /**
   * drain() once (a second call gets the first one's result), then asks the process to stop
   * the agent (exitRequested).
   */
  drainThenExit(opts: { timeoutMs: number; graceMs: number }): Promise<DrainResult> {
    this.#draining ??= this.drain(opts).finally(() => this.#exit());
    return this.#draining;
  }

  #draining: Promise<DrainResult> | undefined;
  #exit: () => void = () => undefined;
  /** Settles when a drain asked the agent to stop (the process then closes it and exits). */
  readonly exitRequested = new Promise<void>((resolve) => (this.#exit = resolve));

  async drain(opts: { timeoutMs: number; graceMs: number }): Promise<DrainResult> {
    const clock = this.opts.clock;
    const started = clock.now();
    const left = (): number => Math.max(0, opts.timeoutMs - (clock.now() - started));
    this.local.setNodeMaintenance(true, DRAIN_REASON);
    let marked = false;
    if (this.opts.servers.length > 0) {
      // The catalog first; a server that cannot be reached does not hold the drain up long.
      marked = await within(
        clock,
        this.sync.syncOnce().then(
          () => true,
          () => false,
        ),
        Math.min(MARK_TIMEOUT_MS, left() / 3),
        false,
      );
      // Only traffic through this host's sidecars needs time to move away.
      if (marked && this.proxies.runners.size > 0)
        await new Promise<void>((r) => clock.setTimeout(r, Math.min(opts.graceMs, left())));
    }
    const cut = await this.proxies.drain(left());
    return { marked, cut };
  }

  async stop(opts: { leave?: boolean } = {}): Promise<void> {
    this.sync.stop();
    if (opts.leave) {
      try {
        await this.heartbeat.leave();
      } catch (err) {
        this.opts.log.warn({ err: describeError(err) }, 'could not leave the cluster cleanly');
      }
    } else {
      this.heartbeat.stop();
    }
    // The nftables rules stay: a stopped agent fails closed (see RedirectManager).
    this.redirect?.stop();
    if (this.dataPlane) {
      // The supervisor keeps serving what is in force: a restarted agent takes it over.
      await this.proxies.release();
      this.dataPlane.close();
    } else await this.proxies.stop();
    await this.proxyWorkers?.close();
    await this.vips.stop();
    await this.checks.stop();
    await this.leaves.stop();
    await this.intentions.stop();
    await this.client.close();
  }
}
