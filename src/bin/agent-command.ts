/** `trellis agent`: argv -> a per-host agent with its local HTTP API. */
import { defaultProxyWorkers } from './daemon-defaults.js';
import {
  DEFAULT_CONNECTION_LIMITS,
  limitConnections,
  type ConnectionLimits,
} from '../httpkit/conn-limits.js';
import Fastify, { type FastifyInstance } from 'fastify';
import { createServer as createHttpServer } from 'node:http';
import { hostname } from 'node:os';
import type { TokenResolver } from '../agent/acl/token-resolver.js';
import type { CARoots } from '../api/index.js';
import type { TlsOptions } from '../client/index.js';
import { AgentIdentity } from '../agent/identity/agent-identity.js';
import { UsageError } from '../cli/index.js';
import { TrellisAgent, type RedirectSettings } from '../agent/agent.js';
import type { ReservedListener } from '../agent/local/sidecar.js';
import { catalogDnsView } from '../agent/dns/catalog-view.js';
import { hostResolvers } from '../agent/dns/host-resolvers.js';
import { startDnsServer } from '../agent/dns/server.js';
import { parseRecursorAddress, type RecursorAddress } from '../config/dns-values.js';
import { agentRoutes } from '../agent/http/agent-routes.js';
import { connectRoutes } from '../agent/http/connect-routes.js';
import { createForwarder, forwardRoutes, type Forwarder } from '../agent/http/forward.js';
import { listenHttp, systemClock, systemRandom, makeConfiguredDir } from '../core/index.js';
import { installConsulHttp, CONSUL_FASTIFY_OPTIONS } from '../httpkit/consul-http.js';
import { accessLogFor } from '../telemetry/access-log.js';
import { auditLogger, type Logger } from '../telemetry/logger.js';
import { AuditLog } from '../httpkit/audit.js';
import { nodeIdFor } from './node-id.js';
import { splitHostPort } from './addresses.js';
import { version as trellisVersion } from '../cli/version.js';

export interface AgentArgs {
  servers: string[];
  /** Per-client connection cap and first-request timeout of the HTTP API. */
  httpLimits?: ConnectionLimits;
  node?: string;
  /** The node's UUID; read from (or made in) the data dir when absent. */
  nodeId?: string;
  datacenter: string;
  dataDir: string;
  httpAddr: string;
  configDir?: string;
  advertise?: string;
  enableScriptChecks?: boolean;
  /** Proxy worker processes; 0 = proxies in the agent's process; default: the cores, at most 8. */
  proxyWorkers?: number;
  /** The data-plane supervisor's socket (`trellis proxy`): proxies there, not in the agent. */
  dataPlaneSocket?: string;
  syncIntervalMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  nodeMeta?: Record<string, string>;
  token?: string;
  /** Onboarding: a single-use join token and the CA fingerprint to pin. */
  joinToken?: string;
  caFingerprint?: string;
  /** Where to serve Prometheus metrics at /metrics (host:port); none when absent. */
  metricsAddr?: string;
  /** Where to answer DNS for `.consul` names (host:port, UDP and TCP); none when absent. */
  dnsAddr?: string;
  /** How the DNS answers (domain, TTLs, recursors); Consul's defaults when absent. */
  dns?: AgentDnsSettings;
}

/** `domain`, `recursors` and `dns_config`, as set (absent: Consul's defaults). */
export interface AgentDnsSettings {
  /** Default `consul`. */
  domain?: string;
  /**
   * ip[:port], tried in order for names outside the domain. Unset: the host's own DNS servers
   * (resolvConf); an empty list: none, such names are refused.
   */
  recursors?: string[];
  /** Where the host's DNS servers are read when `recursors` is unset; default /etc/resolv.conf. */
  resolvConf?: string;
  /** Default 2 s. */
  recursorTimeoutMs?: number;
  /** Default 0. */
  nodeTtlMs?: number;
  /** Service name, `prefix*` or `*` -> ms; default 0. */
  serviceTtlMs?: Record<string, number>;
  /** Default false: warning instances are answered, critical ones never. */
  onlyPassing?: boolean;
}

/** What the composition root may plug into a running agent. */
export interface AgentHooks {
  /**
   * Answer `<svc>.service` A queries with the service's virtual IP while this returns true
   * (the host captures traffic transparently). Default: never.
   */
  dnsVirtualIpsFor?: () => boolean;
}

export interface RunningAgent {
  agent: TrellisAgent;
  app: FastifyInstance;
  address: string;
  /** The metrics listener's address, when one was asked for. */
  metricsAddress?: string;
  /** The DNS listener's address, when one was asked for. */
  dnsAddress?: string;
  close(opts?: { leave?: boolean }): Promise<void>;
}

export function makeAgent(
  args: AgentArgs,
  log: Logger,
  server: boolean,
  tokenResolver?: TokenResolver,
  secure?: { tls: TlsOptions; onRoots: (r: CARoots) => void },
): TrellisAgent {
  const nodeName = args.node ?? hostname();
  makeConfiguredDir(args.dataDir, 0o700, '--data-dir');
  return new TrellisAgent({
    node: {
      node: nodeName,
      nodeId: args.nodeId ?? nodeIdFor(args.dataDir),
      address: args.advertise ?? '127.0.0.1',
      datacenter: args.datacenter,
      meta: server
        ? { 'consul-network-segment': '', 'trellis-role': 'server', ...args.nodeMeta }
        : (args.nodeMeta ?? {}),
    },
    servers: args.servers,
    dataDir: args.dataDir,
    ...(args.configDir ? { configDir: args.configDir } : {}),
    clock: systemClock,
    random: systemRandom,
    log: log.child({ component: 'agent' }),
    proxyLog: log.child({ component: 'proxy' }),
    accessLogTo: (target) =>
      accessLogFor(target, (err, path) =>
        log.warn({ path, err: err.message }, 'access log cannot be written; its lines are dropped'),
      ),
    proxyWorkers: { count: args.proxyWorkers ?? defaultProxyWorkers(), logLevel: log.level },
    ...(args.dataPlaneSocket
      ? { dataPlane: { socketPath: args.dataPlaneSocket, version: trellisVersion } }
      : {}),
    enableScriptChecks: args.enableScriptChecks ?? false,
    ...(args.syncIntervalMs ? { syncIntervalMs: args.syncIntervalMs } : {}),
    ...(args.heartbeatIntervalMs ? { heartbeatIntervalMs: args.heartbeatIntervalMs } : {}),
    ...(args.heartbeatTtlMs ? { heartbeatTtlMs: args.heartbeatTtlMs } : {}),
    ...(args.token ? { token: args.token } : {}),
    ...(tokenResolver ? { tokenResolver } : {}),
    ...(secure ?? {}),
    server,
    redirect: redirectSettings(args),
    listeners: ownListeners(args),
  });
}

/** The agent's configured listeners; port 0 ones are added once bound (runAgent). */
function ownListeners(args: AgentArgs): ReservedListener[] {
  const out: ReservedListener[] = [];
  const add = (addr: string | undefined, def: number, what: string): void => {
    if (!addr) return;
    const { host, port } = splitHostPort(addr, def);
    if (port > 0) out.push({ address: host, port, what });
  };
  add(args.httpAddr, 8500, HTTP_API);
  add(args.metricsAddr, 9102, METRICS);
  add(args.dnsAddr, 8600, DNS);
  return out;
}

const HTTP_API = "the agent's HTTP API";
const METRICS = "the agent's metrics listener";
const DNS = "the agent's DNS listener (UDP and TCP)";

/** Records a bound `host:port` listener as one of the agent's own. */
function recordListener(agent: TrellisAgent, address: string, what: string): void {
  const { host, port } = splitHostPort(address, 0);
  agent.addListener({ address: host, port, what });
}

/**
 * The nftables capture settings: the agent's uid (never captured), its own ports (never
 * redirected), and its DNS port when DNS listens on loopback or every address (the rules
 * send captured port-53 queries to 127.0.0.1).
 */
function redirectSettings(args: AgentArgs): RedirectSettings {
  const ports = new Set<number>();
  const portOf = (addr: string | undefined, def: number): number | undefined => {
    if (!addr) return undefined;
    const { port } = splitHostPort(addr, def);
    if (port > 0) ports.add(port);
    return port;
  };
  portOf(args.httpAddr, 8500);
  portOf(args.metricsAddr, 9102);
  const dnsPort = portOf(args.dnsAddr, 8600);
  const dnsHost = args.dnsAddr ? splitHostPort(args.dnsAddr, 8600).host : '';
  const dnsOnLoopback = ['127.0.0.1', '0.0.0.0', 'localhost'].includes(dnsHost);
  return {
    proxyUid: process.getuid?.() ?? 0,
    agentPorts: [...ports].sort((x, y) => x - y),
    ...(dnsPort && dnsOnLoopback ? { dnsPort } : {}),
  };
}

export async function runAgent(
  args: AgentArgs,
  log: Logger,
  hooks: AgentHooks = {},
): Promise<RunningAgent> {
  const identity = await agentIdentity(args, log);
  const agent = makeAgent(
    {
      ...args,
      ...(identity ? { token: args.token ?? identity.token } : {}),
    },
    log,
    false,
    undefined,
    identity ? { tls: identity.tls(), onRoots: (r) => identity.setRoots(r) } : undefined,
  );
  await agent.start();
  identity?.start(agent.client, systemClock, systemRandom, log.child({ component: 'identity' }));
  const { host, port } = splitHostPort(args.httpAddr, 8500);
  const app = Fastify(CONSUL_FASTIFY_OPTIONS);
  limitConnections(app.server, args.httpLimits ?? DEFAULT_CONNECTION_LIMITS, false);
  installConsulHttp(
    app,
    log.child({ component: 'agent-http' }),
    () => agent.aclDefaultPolicy,
    new AuditLog(auditLogger(log)),
  );
  agentRoutes(app, agent);
  connectRoutes(app, agent);
  const fwd: Forwarder = createForwarder(
    () => agent.servers,
    identity?.tls(),
    agent.opts.node.node,
  );
  forwardRoutes(app, fwd, agent.opts.node.node);
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  let dns: Awaited<ReturnType<typeof serveDns>> | undefined;
  try {
    await app.listen({ host, port });
    metrics = args.metricsAddr ? await serveMetrics(args.metricsAddr, agent) : undefined;
    // `<svc>.service.consul` answers the virtual IP while this host captures traffic: the
    // VIP is what the rules redirect on any port.
    const vipsFor = hooks.dnsVirtualIpsFor ?? (() => agent.redirect?.capturing ?? false);
    dns = args.dnsAddr ? await serveDns(args, agent, log, vipsFor) : undefined;
  } catch (err) {
    // A port already taken: stop what started (proxies, checks) so the process can exit.
    await metrics?.close();
    await app.close();
    identity?.stop(systemClock);
    await agent.stop();
    await fwd.close();
    throw err;
  }
  const addr = app.server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const address = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  recordListener(agent, address, HTTP_API);
  if (metrics) recordListener(agent, metrics.address, METRICS);
  if (dns) recordListener(agent, dns.address, DNS);
  // Ready means the restored rules and the saved plans are in force, not only that the API answers.
  await agent.restored();
  log.info({ address, node: agent.opts.node.node, servers: args.servers }, 'trellis agent ready');
  return {
    agent,
    app,
    address,
    ...(metrics ? { metricsAddress: metrics.address } : {}),
    ...(dns ? { dnsAddress: dns.address } : {}),
    async close(opts = {}) {
      await metrics?.close();
      await dns?.close();
      await app.close();
      identity?.stop(systemClock);
      await agent.stop(opts);
      await fwd.close();
    },
  };
}

/**
 * A joined host's identity: loaded from the data dir, or made now by trading the join token.
 * Without either, the agent talks plain HTTP with the token it was given.
 */
async function agentIdentity(args: AgentArgs, log: Logger): Promise<AgentIdentity | undefined> {
  const saved = AgentIdentity.load(args.dataDir);
  if (saved) {
    if (args.joinToken)
      log.info({ node: saved.file.node }, 'already joined; the join token is not needed');
    return saved;
  }
  if (!args.joinToken) return undefined;
  if (!args.caFingerprint)
    throw new UsageError(
      '--join-token needs --ca-fingerprint (printed by `trellis acl token create --join`)',
    );
  const identity = await AgentIdentity.join({
    servers: args.servers,
    joinToken: args.joinToken,
    caFingerprint: args.caFingerprint,
    node: args.node ?? hostname(),
    datacenter: args.datacenter,
    dataDir: args.dataDir,
  });
  log.info(
    { node: identity.file.node, accessor: identity.file.tokenAccessor },
    'joined the cluster',
  );
  return identity;
}

/**
 * The metrics port (`metrics_addr`, like Envoy's or Linkerd's admin port): Prometheus text at
 * GET /metrics, nothing else, no token. Bind it where only Prometheus can reach it; the same
 * figures are also at /v1/agent/metrics?format=prometheus on the API, behind ACLs.
 */
async function serveMetrics(
  addr: string,
  agent: TrellisAgent,
): Promise<{ address: string; close(): Promise<void> }> {
  const { host, port } = splitHostPort(addr, 9102);
  const server = createHttpServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    agent.metricsView().then(
      async (view) => {
        const text = await view.metrics();
        res.writeHead(200, { 'content-type': view.contentType }).end(text);
      },
      () => res.writeHead(500).end(),
    );
  });
  return listenHttp(server, host, port);
}

/** The agent's DNS (`dns_addr`): `.consul` names answered from the catalog, UDP and TCP. */
async function serveDns(
  args: AgentArgs,
  agent: TrellisAgent,
  log: Logger,
  virtualIpsFor: () => boolean = () => false,
): Promise<{ address: string; close(): Promise<void> }> {
  const { host, port } = splitHostPort(args.dnsAddr!, 8600);
  const dns = args.dns ?? {};
  const seconds = (ms: number): number => Math.floor(ms / 1000);
  const server = await startDnsServer({
    host,
    port,
    view: catalogDnsView(agent.client, systemClock, {
      onlyPassing: dns.onlyPassing ?? false,
      vips: agent.vips,
    }),
    domain: dns.domain ?? 'consul.',
    datacenter: args.datacenter,
    nodeName: agent.opts.node.node,
    ttl: 0,
    nodeTtl: seconds(dns.nodeTtlMs ?? 0),
    ...(dns.serviceTtlMs
      ? {
          serviceTtls: Object.fromEntries(
            Object.entries(dns.serviceTtlMs).map(([k, ms]) => [k, seconds(ms)]),
          ),
        }
      : {}),
    virtualIpsFor,
    recursors: recursorsFor(dns, { host, port }, log),
    ...(dns.recursorTimeoutMs ? { recursorTimeoutMs: dns.recursorTimeoutMs } : {}),
    agentAddress: agent.opts.node.address,
    now: () => systemClock.now(),
    log: log.child({ component: 'dns' }),
  });
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${server.port}`,
    close: () => server.close(),
  };
}

/**
 * `recursors` as set; unset, the host's own DNS servers, so a captured app's ordinary lookups
 * (every port-53 query it makes reaches this agent) keep working.
 */
function recursorsFor(dns: AgentDnsSettings, own: RecursorAddress, log: Logger): RecursorAddress[] {
  if (dns.recursors !== undefined) return dns.recursors.map(parseRecursorAddress);
  const found = hostResolvers({ own, ...(dns.resolvConf ? { resolvConf: dns.resolvConf } : {}) });
  const dnsLog = log.child({ component: 'dns' });
  for (const s of found.skipped) dnsLog.info(s, 'dns: a host DNS server is not forwarded to');
  const servers = found.recursors.map((r) => r.host);
  if (servers.length > 0)
    dnsLog.info(
      { recursors: servers, from: found.sources },
      "dns: names outside the mesh domain go to the host's DNS servers (recursors is not set)",
    );
  else
    dnsLog.warn(
      { read: found.sources },
      'dns: no recursors set and no usable DNS server of the host found: names outside the mesh domain are refused (set recursors)',
    );
  return found.recursors;
}
