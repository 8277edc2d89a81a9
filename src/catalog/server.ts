/**
 * The catalog server's composition root.
 *
 *   1. open the durable store (recover snapshot + write-ahead log) and rebuild the state
 *   2. start the writer (group-committed log -> apply in order); with etcd, join the servers
 *      (lease, leader election, registry); liveness, session timers and CA maintenance run on
 *      the leader only
 *   3. serve the Consul-compatible HTTP API
 *   4. register this server's own node, its `consul` service and serfHealth
 *
 * It knows nothing of the agent: the agent API for the server's own node is mounted by the
 * binary through `extraRoutes`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { SERF_CHECK_ID } from '../api/index.js';
import type { Clock, Random } from '../core/index.js';
import type { DefaultPolicy } from '../policy/index.js';
import { AclResolver } from './acl/resolver.js';
import { aclRoutes } from './http/acl-routes.js';
import { join } from 'node:path';
import { caError, CertificateAuthority } from './connect/authority.js';
import { FileCaKeyStore, type CaKeyStore } from './connect/key-store.js';
import { SigningLimiter, type SigningLimits } from './connect/rate-limit.js';
import { connectCaRoutes } from './http/connect-ca-routes.js';
import { isIP } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { ServerTls } from './connect/server-tls.js';
import { CONSUL_FASTIFY_OPTIONS, installConsulHttp } from '../httpkit/consul-http.js';
import { AuditLog, type AuditSink } from '../httpkit/audit.js';
import {
  DEFAULT_CONNECTION_LIMITS,
  limitConnections,
  type ConnectionGate,
  type ConnectionLimits,
} from '../httpkit/conn-limits.js';
import { catalogRoutes } from './http/catalog-routes.js';
import { configRoutes } from './http/config-routes.js';
import { intentionRoutes } from './http/intention-routes.js';
import { coordinateRoutes } from './http/coordinate-routes.js';
import { eventRoutes } from './http/event-routes.js';
import { operatorRoutes } from './http/operator-routes.js';
import { queryRoutes } from './http/query-routes.js';
import type { CatalogContext, CatalogLogger } from './http/context.js';
import { ResponseCache } from './http/response-cache.js';
import { healthRoutes } from './http/health-routes.js';
import { kvRoutes } from './http/kv-routes.js';
import { sessionRoutes } from './http/session-routes.js';
import { snapshotRoutes } from './http/snapshot-routes.js';
import { statusRoutes } from './http/status-routes.js';
import { ALIVE_OUTPUT, Liveness, serfCheck } from './liveness.js';
import { SessionTimers } from './session-timers.js';
import { StateStore } from './state/state-store.js';
import { DEFAULT_VIP_RANGE, type VipRebase } from './state/vip-table.js';
import type { CommandLog } from './state/command-log.js';
import { Writer } from './state/writer.js';
import { createEmbeddedStore } from './store/index.js';
import type { DurableStore } from './store/types.js';
import type { EtcdConnectionOptions } from './etcd/etcd-client.js';
import { SoloLeadership, type Leadership, type ServerInfo } from './leadership.js';
import type { HeardElsewhere } from './liveness.js';
import { ALWAYS_CURRENT, installFreshness, type Freshness } from './http/freshness.js';

export interface ServerOptions {
  dataDir: string;
  datacenter: string;
  nodeName: string;
  nodeId: string;
  /** Address to listen on. */
  host: string;
  port: number;
  /** Address other hosts reach this server at (its node Address). */
  advertiseAddr: string;
  clock: Clock;
  random: Random;
  newId: () => string;
  log: CatalogLogger;
  snapshotEvery?: number;
  sessionMinTTLms?: number;
  /** Time nodes get after a server start to heartbeat again (ms). */
  nodeGraceMs?: number;
  /** How far clocks may disagree (ms) when dropping rotated-out CA roots (default 60 s). */
  caClockSkewMs?: number;
  /** Nodes critical this long are removed (ms, default 72h as in Consul). */
  nodeReapAfterMs?: number;
  /** Extra routes (the agent API of this server's own node). */
  extraRoutes?: (app: FastifyInstance) => void | Promise<void>;
  store?: DurableStore;
  /**
   * Keep the catalog in etcd instead of the embedded store: a command log every server of the
   * cluster follows (catalog/etcd/etcd-log.ts). `dataDir` still holds local files (CA keys).
   */
  etcd?: EtcdConnectionOptions;
  /** Called if this server can no longer follow the etcd log (the binary exits). */
  onFatal?: (err: Error) => void;
  /**
   * With `etcd`: the 32-byte key CA private keys are encrypted with in etcd, and the file it
   * was read from (--ca-encryption-key-file; named in messages). Required with `etcd`.
   */
  caEncryption?: {
    key: Buffer;
    file: string;
    /** Keys stored values may still be sealed with; re-sealed with `key` at start. */
    previous?: { key: Buffer; file: string }[];
  };
  /** What tokens without a matching rule may do: 'deny' in production, 'allow' in dev mode. */
  aclDefaultPolicy?: DefaultPolicy;
  /** False: ACLs are off, every token is ignored and everything allowed (default true). */
  aclEnabled?: boolean;
  /** Also serve the API over TLS with a certificate from the mesh CA. */
  https?: { host: string; port: number };
  /** Where CA private keys are kept (default <dataDir>/ca-keys). */
  caKeyDir?: string;
  /** Secret the server's own in-process agent uses (management rights, never stored). */
  internalSecret?: string;
  /** Where mesh services' virtual IPs come from (default 240.0.0.0/4). */
  vipRange?: string;
  /** Version reported by the operator endpoints. */
  version?: string;
  /** Per-client connection cap and first-request timeout of the API listeners. */
  httpLimits?: ConnectionLimits;
  /** Where audit lines go (default: `log`); the binary passes a logger always at info. */
  audit?: AuditSink;
}

export interface CatalogServer {
  app: FastifyInstance;
  state: StateStore;
  writer: CommandLog;
  /** host:port the API listens on. */
  address: string;
  /** host:port of the HTTPS API, when it runs. */
  httpsAddress?: string;
  /** Resolves request tokens (the server's own agent decides its API with it). */
  acl: AclResolver;
  ca: CertificateAuthority;
  /** Open connections per client address on the plain HTTP listener. */
  connections: ConnectionGate;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<CatalogServer> {
  if (opts.etcd && !opts.caEncryption)
    throw new Error(
      'a server on etcd needs --ca-encryption-key-file (CA keys are stored in etcd encrypted; docs/ha.md)',
    );
  const fileKeys = new FileCaKeyStore(opts.caKeyDir ?? join(opts.dataDir, 'ca-keys'));
  const { state, writer, closeStore, keys, freshness, signing } = opts.etcd
    ? await openEtcd(opts, opts.etcd, fileKeys)
    : {
        ...(await openEmbedded(opts)),
        keys: fileKeys,
        freshness: ALWAYS_CURRENT,
        signing: new SigningLimiter() as SigningLimits,
      };
  const startedAt = opts.clock.now();
  const self: ServerInfo = {
    id: opts.nodeId,
    node: opts.nodeName,
    address: `${opts.advertiseAddr}:8300`,
    started: startedAt,
  };
  // Liveness needs the leadership, and the membership publishes what liveness heard.
  const heard: { from?: Liveness } = {};
  const cluster = opts.etcd
    ? await joinCluster(opts, opts.etcd, self, () => heard.from?.heardHere() ?? new Map()).catch(
        async (err: unknown) => {
          await writer.close().catch(() => undefined);
          await closeStore().catch(() => undefined);
          throw err;
        },
      )
    : { leadership: new SoloLeadership(self), heardElsewhere: undefined, close: async () => {} };
  const leadership = cluster.leadership;
  const liveness = new Liveness(state, writer, {
    clock: opts.clock,
    graceMs: opts.nodeGraceMs ?? 30_000,
    ...(opts.nodeReapAfterMs !== undefined ? { reapAfterMs: opts.nodeReapAfterMs } : {}),
    selfNode: opts.nodeName,
    datacenter: opts.datacenter,
    log: opts.log,
    leadership,
    ...(cluster.heardElsewhere ? { elsewhere: cluster.heardElsewhere } : {}),
  });
  heard.from = liveness;
  const sessions = new SessionTimers({
    state,
    writer,
    leadership,
    clock: opts.clock,
    log: opts.log,
    renewThroughLog: opts.etcd !== undefined,
  });
  const audit = new AuditLog(opts.audit ?? opts.log);
  const ctx: CatalogContext = {
    audit,
    state,
    writer,
    clock: opts.clock,
    random: opts.random,
    datacenter: opts.datacenter,
    nodeName: opts.nodeName,
    advertise: `${opts.advertiseAddr}:8300`,
    liveness,
    sessions,
    log: opts.log,
    newId: opts.newId,
    responses: new ResponseCache(),
    acl: new AclResolver(state, {
      defaultPolicy: opts.aclDefaultPolicy ?? 'deny',
      enabled: opts.aclEnabled ?? true,
      datacenter: opts.datacenter,
      clock: opts.clock,
      ...(opts.internalSecret ? { internalSecret: opts.internalSecret } : {}),
    }),
    ca: new CertificateAuthority({
      state,
      propose: async (cmd) => {
        const r = await writer.propose(cmd);
        if (!r.ok) throw caError(r.error, r.status);
        return r.value;
      },
      keys,
      clock: opts.clock,
      datacenter: opts.datacenter,
      newId: opts.newId,
      log: opts.log,
      audit,
      sharedState: opts.etcd !== undefined,
      ...(opts.caClockSkewMs !== undefined ? { clockSkewMs: opts.caClockSkewMs } : {}),
    }),
    signing,
    version: opts.version ?? '0.1.0',
    leadership,
    // Every live server (one with the embedded store); all vote, the elected one leads.
    servers: () => {
      const leaderId = leadership.leader()?.id;
      return leadership.servers().map((s) => ({
        id: s.id,
        node: s.node,
        address: s.address,
        leader: s.id === leaderId,
        voter: true,
        alive: true,
        since: s.started,
        configIndex: state.catalog.nodes.get(s.node)?.CreateIndex ?? 1,
      }));
    },
  };

  // The same API on plain HTTP and, when asked, on HTTPS with the mesh CA's server certificate.
  const mount = async (app: FastifyInstance): Promise<void> => {
    installConsulHttp(app, opts.log, () => ctx.acl.defaultPolicy, audit);
    installFreshness(app, freshness);
    catalogRoutes(app, ctx);
    healthRoutes(app, ctx);
    kvRoutes(app, ctx);
    sessionRoutes(app, ctx, { minTTLms: opts.sessionMinTTLms ?? 10_000, maxTTLms: 86_400_000 });
    statusRoutes(app, ctx);
    aclRoutes(app, ctx);
    connectCaRoutes(app, ctx);
    configRoutes(app, ctx);
    intentionRoutes(app, ctx);
    eventRoutes(app, ctx);
    queryRoutes(app, ctx);
    coordinateRoutes(app, ctx);
    operatorRoutes(app, ctx);
    snapshotRoutes(app, ctx);
    if (opts.extraRoutes) await opts.extraRoutes(app);
  };
  const limits = opts.httpLimits ?? DEFAULT_CONNECTION_LIMITS;
  const app = Fastify(CONSUL_FASTIFY_OPTIONS);
  const connections = limitConnections(app.server, limits, false);
  await mount(app);

  const caMaintenance = leaderOnly(
    leadership,
    () => ctx.ca.start(),
    () => ctx.ca.stop(),
  );
  let httpsApp: FastifyInstance | undefined;
  let serverTls: ServerTls | undefined;
  const close = async (): Promise<void> => {
    liveness.stop();
    sessions.stop();
    ctx.ca.stop();
    caMaintenance.stop();
    // Leaving etcd first (the lease is revoked) lets another server lead at once.
    await cluster.close().catch(() => undefined);
    serverTls?.stop();
    await httpsApp?.close();
    await app.close();
    await writer.close();
    await closeStore();
  };
  try {
    await ensureVipRange(state, writer, opts);
    await registerSelf(state, writer, opts);
    await checkCaKeys(keys, state, opts.log);
    await ctx.ca.init();
    caMaintenance.start();
    sessions.start();
    writer.onRestored(() => void afterRestore(state, writer, sessions, opts));
    liveness.start();
    if (opts.https) {
      serverTls = new ServerTls({
        ca: ctx.ca,
        state,
        clock: opts.clock,
        random: opts.random,
        datacenter: opts.datacenter,
        dnsNames: [`server.${opts.datacenter}.consul`, 'localhost'],
        ipAddresses: [
          ...new Set(['127.0.0.1', '::1', ...ipsOf(opts.advertiseAddr, opts.https.host)]),
        ],
        log: opts.log,
      });
      await serverTls.init();
      // Clients may present a mesh certificate (agents do); the routes decide what it proves.
      const https = Fastify({
        ...CONSUL_FASTIFY_OPTIONS,
        https: {
          ...serverTls.options(),
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
          ...(limits.handshakeTimeoutMs > 0 ? { handshakeTimeout: limits.handshakeTimeoutMs } : {}),
        },
      });
      limitConnections(https.server, limits, true);
      httpsApp = https as unknown as FastifyInstance;
      await mount(httpsApp);
      serverTls.onChange((o) => (https.server as TlsServer).setSecureContext(o));
      serverTls.start();
    }
  } catch (err) {
    // E.g. no CA key for the HTTPS certificate: stop the timers and the log (an etcd watch
    // would keep the process alive), so the process can exit with the error.
    await close().catch(() => undefined);
    throw err;
  }
  try {
    await app.listen({ host: opts.host, port: opts.port });
    if (httpsApp && opts.https)
      await httpsApp.listen({ host: opts.https.host, port: opts.https.port });
  } catch (err) {
    // A port already taken: stop the timers and close the log, so the process can exit.
    await close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let httpsAddress: string | undefined;
  if (httpsApp && opts.https) {
    const a = httpsApp.server.address();
    const h = opts.https.host.includes(':') ? `[${opts.https.host}]` : opts.https.host;
    const httpsPort = typeof a === 'object' && a ? a.port : opts.https.port;
    httpsAddress = `${h}:${httpsPort}`;
    const adv = opts.advertiseAddr.includes(':') ? `[${opts.advertiseAddr}]` : opts.advertiseAddr;
    ctx.httpsAdvertise = `${adv}:${httpsPort}`;
  }

  return {
    app,
    state,
    writer,
    address: `${hostForUrl}:${port}`,
    ...(httpsAddress ? { httpsAddress } : {}),
    acl: ctx.acl,
    ca: ctx.ca,
    connections,
    close,
  };
}

/**
 * Runs `start` while this server leads and `stop` when it stops leading (the CA's scheduled
 * rotation and pruning: a manual rotation through the API works on any server).
 */
function leaderOnly(
  leadership: Leadership,
  start: () => void,
  stop: () => void,
): { start(): void; stop(): void } {
  let running = false;
  let enabled = false;
  const follow = (): void => {
    const want = enabled && leadership.isLeader();
    if (want === running) return;
    running = want;
    if (want) start();
    else stop();
  };
  leadership.onChange(follow);
  return {
    start: () => {
      enabled = true;
      follow();
    },
    stop: () => {
      enabled = false;
      follow();
    },
  };
}

/** etcd: this server's lease, its candidacy for leader and its entry among the servers. */
async function joinCluster(
  opts: ServerOptions,
  etcd: EtcdConnectionOptions,
  self: ServerInfo,
  heardHere: () => ReadonlyMap<string, number>,
): Promise<{ leadership: Leadership; heardElsewhere: HeardElsewhere; close(): Promise<void> }> {
  const { joinEtcdCluster } = await import('./etcd/cluster-membership.js');
  return joinEtcdCluster({ connection: etcd, self, clock: opts.clock, log: opts.log, heardHere });
}

interface OpenedStore {
  state: StateStore;
  writer: CommandLog;
  closeStore(): Promise<void>;
}

/** The embedded store: recover snapshot + write-ahead log from the data dir. */
async function openEmbedded(opts: ServerOptions): Promise<OpenedStore> {
  const store = opts.store ?? createEmbeddedStore({ dir: opts.dataDir, logger: opts.log });
  const recovered = await store.open();
  for (const w of recovered.warnings) opts.log.warn({ dataDir: opts.dataDir }, w);
  const state = recovered.snapshot
    ? StateStore.deserialize(recovered.snapshot.data)
    : new StateStore();
  for (const e of recovered.entries) state.apply(e.command as never, e.index);
  opts.log.info(
    {
      index: state.lastIndex,
      snapshot: recovered.snapshot?.index ?? 0,
      replayed: recovered.entries.length,
    },
    'catalog state recovered',
  );
  const writer = new Writer(state, store, {
    snapshotEvery: opts.snapshotEvery ?? 10_000,
    logger: opts.log,
  });
  return { state, writer, closeStore: () => store.close() };
}

/**
 * etcd: the stored snapshot and the log after it, then the watch that keeps following it; CA
 * keys in etcd, encrypted (keys found only in the old ca-keys directory are uploaded).
 */
async function openEtcd(
  opts: ServerOptions,
  etcd: EtcdConnectionOptions,
  fileKeys: FileCaKeyStore,
): Promise<OpenedStore & { keys: CaKeyStore; freshness: Freshness; signing: SigningLimits }> {
  // Loaded only here: the etcd client (gRPC) would add ~7 MiB to every trellis process.
  const { openEtcdLog } = await import('./etcd/etcd-log.js');
  const { EtcdCaKeyStore } = await import('./etcd/etcd-key-store.js');
  const { EtcdSigningLimiter } = await import('./etcd/etcd-signing-limiter.js');
  const { etcdKeys } = await import('./etcd/keys.js');
  const { DEFAULT_ETCD_REQUEST_TIMEOUT_MS } = await import('./etcd/etcd-client.js');
  const opened = await openEtcdLog({
    connection: etcd,
    clock: opts.clock,
    newId: opts.newId,
    log: opts.log,
    ...(opts.snapshotEvery !== undefined ? { snapshotEvery: opts.snapshotEvery } : {}),
    ...(opts.onFatal ? { onFatal: opts.onFatal } : {}),
  });
  opts.log.info(
    {
      endpoints: etcd.endpoints,
      prefix: etcd.prefix,
      index: opened.state.lastIndex,
      snapshot: opened.snapshotIndex,
      replayed: opened.replayed,
    },
    'catalog state loaded from etcd',
  );
  const timeout = etcd.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
  const keys = new EtcdCaKeyStore({
    client: opened.client,
    keys: etcdKeys(etcd.prefix),
    encryptionKey: opts.caEncryption!.key,
    encryptionKeyFile: opts.caEncryption!.file,
    previousKeys: opts.caEncryption!.previous ?? [],
    legacy: fileKeys,
    call: () => ({ deadline: opts.clock.now() + timeout }),
    log: opts.log,
  });
  try {
    const { stored, resealed } = await keys.verifyAll();
    opts.log.info(
      { stored, resealed, file: opts.caEncryption!.file },
      'CA keys in etcd decrypt with the encryption key file',
    );
  } catch (err) {
    await opened.log.close();
    throw err;
  }
  // One bucket per node in etcd, so a host gets its rate once, not once per server.
  const signing = new EtcdSigningLimiter({
    client: opened.client,
    bucketPrefix: etcdKeys(etcd.prefix).signBucketPrefix,
    clock: opts.clock,
    random: opts.random,
    call: () => ({ deadline: opts.clock.now() + timeout }),
  });
  return {
    state: opened.state,
    writer: opened.log,
    closeStore: async () => undefined,
    keys,
    freshness: opened.log,
    signing,
  };
}

/**
 * Reads the key of every root the state lists: a store that keeps keys elsewhere (etcd) uploads
 * any it finds only in the old ca-keys directory now, once, not at the first signing.
 */
async function checkCaKeys(keys: CaKeyStore, state: StateStore, log: CatalogLogger): Promise<void> {
  for (const root of state.ca.roots) {
    if ((await keys.read(root.ID)) === undefined)
      log.warn({ root: root.ID, where: keys.where(root.ID) }, 'no private key for this CA root');
  }
}

/**
 * A restored state (from this server or, on etcd, any server) carries the session TTLs, the
 * virtual-IP range and server nodes of the cluster it was saved on: restart the TTL timers and
 * put this server's own settings and node back.
 */
async function afterRestore(
  state: StateStore,
  writer: CommandLog,
  sessions: SessionTimers,
  opts: ServerOptions,
): Promise<void> {
  sessions.restored();
  try {
    await ensureVipRange(state, writer, opts);
    await registerSelf(state, writer, opts);
  } catch (err) {
    opts.log.warn({ err: String(err) }, 'could not re-register this server after a restore');
  }
}

/**
 * A configured virtual-IP range other than the state's is applied through the log (not just in
 * memory), so a replay, and every replica, moves the same addresses the same way.
 */
async function ensureVipRange(
  state: StateStore,
  writer: CommandLog,
  opts: ServerOptions,
): Promise<void> {
  const range = opts.vipRange ?? DEFAULT_VIP_RANGE;
  const vips = state.catalog.vips;
  if (vips.sameRange(range)) return;
  const r = await writer.propose({ type: 'vip-range', range });
  if (!r.ok) throw new Error(`could not change the virtual IP range: ${r.error}`);
  const change = r.value as VipRebase;
  const what = { from: vips.rangeText, to: range, kept: change.kept.length };
  if (change.moved.length === 0 && change.dropped.length === 0)
    opts.log.info(what, 'virtual IP range changed; every address was kept');
  else
    opts.log.warn(
      { ...what, moved: change.moved, dropped: change.dropped },
      'virtual IP range changed: addresses outside the new range were reallocated',
    );
}

/** The server's own node, with the `consul` service and a passing serfHealth, as Consul has. */
async function registerSelf(
  state: StateStore,
  writer: CommandLog,
  opts: ServerOptions,
): Promise<void> {
  const node = state.catalog.nodes.get(opts.nodeName);
  const svc = state.catalog.getService(opts.nodeName, 'consul');
  const serf = state.catalog.getCheck(opts.nodeName, SERF_CHECK_ID);
  if (node?.Address === opts.advertiseAddr && svc && serf?.Status === 'passing') return;
  const a = opts.advertiseAddr;
  const r = await writer.propose({
    type: 'register',
    node: {
      ID: opts.nodeId,
      Node: opts.nodeName,
      Address: a,
      Datacenter: opts.datacenter,
      TaggedAddresses: { lan: a, lan_ipv4: a, wan: a, wan_ipv4: a },
      Meta: { 'consul-network-segment': '', 'trellis-role': 'server' },
    },
    skipNodeUpdate: false,
    service: {
      ID: 'consul',
      Service: 'consul',
      Tags: [],
      Meta: {},
      Port: 8300,
      Address: '',
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
    },
    checks: [serfCheck('passing', ALIVE_OUTPUT)],
  });
  if (!r.ok) throw new Error(`could not register the server's own node: ${r.error}`);
}

/** The IP addresses among the server's addresses, for its certificate. */
function ipsOf(...addrs: string[]): string[] {
  return addrs.filter((a) => isIP(a) !== 0 && a !== '0.0.0.0' && a !== '::');
}
