/**
 * The paths the data-plane benchmark drives load through, each a "pair" that starts its
 * processes and says where the load goes. Adding a row is adding an entry to PAIRS.
 *
 * HTTP/1.1 rows (wrk, and the Node open loop at a fixed rate):
 *   direct                wrk -> nginx
 *   haproxy-1             ONE HAProxy process holding both sides of an mTLS pair, `nbthread 1`:
 *                         plain frontend -> backend with `ssl crt ... verify required` ->
 *                         second frontend `bind ... ssl ... verify required` -> nginx
 *   haproxy-2             the same with `nbthread 2`
 *   trellis-tcp           ONE Node process holding web's and api's ServiceProxy (as a dev agent
 *                         does): web's upstream listener -> mTLS -> api's inbound -> nginx,
 *                         protocol tcp
 *   trellis-http          the same with protocol http
 *   trellis-http-workers  hook for the later "Trellis with N proxy workers" row (skipped until
 *                         proxy_workers exists; see trellisWorkersPair)
 * HTTP/2 rows (h2load, prior-knowledge h2c from the generator, h2c to nginx):
 *   h2-direct             h2load -> nginx's h2c listener
 *   h2-haproxy-1          the HAProxy pair with `proto h2` in front, alpn h2 between its two
 *                         sides and `proto h2` to the app, `nbthread 1`
 *   trellis-grpc          the Trellis pair with protocol http2
 *
 * Every proxy process's CPU is read under a key starting with "proxy:"; a row's CPU per proxy
 * is their sum divided by `proxies` (2: both sides of the pair, even when one process holds
 * both).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Protocol, ProxyPlan } from '../../src/proxy/index.js';
import { freePort } from '../../test/helpers/net.js';
import { spiffeUri, type TestLeaf } from '../../test/helpers/mesh-ca.js';
import { waitPorts, type Child, type ProcessGroup } from './children.js';
import type { RunningApp } from './nginx.js';
import { h2loadPath, haproxyPath, missing, wrkPath } from './tools.js';
import { READY_MARK } from './types.js';

const PROXY_HOST = fileURLToPath(new URL('./proxy-host.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;
/** Trellis checks this itself; the leaves' own validity (1 h) is what TLS peers check. */
const PLAN_VALID_MS = 24 * 3600_000;
/** The prefix of the CPU keys of proxy processes. */
export const PROXY_KEY = 'proxy:';

export interface MeshCerts {
  rootPem: string;
  web: TestLeaf;
  api: TestLeaf;
}

export interface PairContext {
  group: ProcessGroup;
  /** A temp directory for plans and configs (removed with the group). */
  dir: string;
  app: RunningApp;
  certs: MeshCerts;
  /** ServiceProxy's `upstreamHttp` for the Trellis rows, or undefined for its default. */
  upstreamHttp: 'h2' | 'http1' | undefined;
}

export interface RunningPair {
  /** The port on 127.0.0.1 the load generator sends to. */
  port: number;
  /** The proxy processes by CPU key (PROXY_KEY + name), read at each measurement. */
  cpuPids(): Record<string, number>;
  /** Whether every proxy process is still running. */
  alive(): boolean;
  stop(): Promise<void>;
}

export interface PairSpec {
  /** Short id (logs, BENCH_DATAPLANE_PAIRS). */
  id: string;
  /** Row label in the report. */
  label: string;
  http: 'h1' | 'h2';
  /** Whether this row is Trellis. */
  trellis: boolean;
  /** Proxies on the path (for CPU per proxy). */
  proxies: number;
  /** Why this pair cannot run on this machine, or undefined when it can. */
  unavailable(ctx: { app: RunningApp }): string | undefined;
  start(ctx: PairContext): Promise<RunningPair>;
}

function generatorMissing(http: 'h1' | 'h2'): string | undefined {
  if (http === 'h1') return wrkPath() ? undefined : missing('wrk', 'wrk', 'BENCH_WRK');
  return h2loadPath() ? undefined : missing('h2load', 'nghttp2-client', 'BENCH_H2LOAD');
}

/** Every reason a row cannot run, or undefined when there is none. */
function reasons(...list: (string | undefined)[]): string | undefined {
  const given = list.filter((x): x is string => x !== undefined);
  return given.length ? given.join('; ') : undefined;
}

function appPort(app: RunningApp, http: 'h1' | 'h2'): number {
  if (http === 'h1') return app.port;
  if (app.h2cPort === undefined) throw new Error('the app has no h2c listener');
  return app.h2cPort;
}

function oneProcess(key: string, child: Child): Pick<RunningPair, 'cpuPids' | 'alive'> {
  return { cpuPids: () => ({ [PROXY_KEY + key]: child.pid }), alive: () => child.running() };
}

// ---- Trellis ------------------------------------------------------------------------------

function trellisPlan(
  ctx: PairContext,
  service: 'web' | 'api',
  protocol: Protocol,
  inboundPort: number,
  localAppPort: number,
  upstreams: ProxyPlan['upstreams'],
  accessLog: boolean,
): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: {
      ...ctx.certs[service],
      roots: [ctx.certs.rootPem],
      notAfter: Date.now() + PLAN_VALID_MS,
    },
    // Deny by default, with the one intention this traffic needs (as a real mesh would have).
    intentions: [{ ID: 'web => api', SourceName: 'web', DestinationName: 'api', Action: 'allow' }],
    defaultAllow: false,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: inboundPort,
      localApp: { address: '127.0.0.1', port: localAppPort },
      protocol,
    },
    upstreams,
    // An agent's default is off (proxy-defaults AccessLogs); rows that want it say so.
    accessLogs: { enabled: accessLog, listenerLogs: true, target: { type: 'stderr' } },
  };
}

/** What proxy-host.ts reads: the plans to install, in order, and its ServiceProxy options. */
export interface HostJob {
  plans: ProxyPlan[];
  upstreamHttp?: 'h2' | 'http1';
  /** Hook: proxy workers for the later workers row (the host refuses any value but 1 today). */
  workers?: number;
}

export interface HostReady {
  /** Per plan: its upstream listeners' ports by destination. */
  upstreams: Record<string, number>[];
  /** With proxy workers: their process ids (they carry the traffic; the host only directs). */
  workerPids?: number[];
}

/** Starts both proxies of the pair in ONE process; returns it and web's port for api. */
export async function startTrellisHost(
  ctx: PairContext,
  id: string,
  protocol: Protocol,
  workers?: number,
  nodeArgs: string[] = [],
  hostScript = PROXY_HOST,
  accessLog = false,
): Promise<{ child: Child; port: number; workerPids: number[] }> {
  const http = protocol === 'http2' || protocol === 'grpc' ? 'h2' : 'h1';
  const apiInbound = await freePort();
  const api = trellisPlan(ctx, 'api', protocol, apiInbound, appPort(ctx.app, http), [], accessLog);
  // web's own inbound is unused here; port 0 lets the kernel pick one. Workers share listeners
  // by address and port, so they get concrete ports (as an agent's sidecars have).
  const web = trellisPlan(
    ctx,
    'web',
    protocol,
    workers ? await freePort() : 0,
    1,
    [
      {
        destination: 'api',
        bindAddress: '127.0.0.1',
        bindPort: workers ? await freePort() : 0,
        identity: spiffeUri('api'),
        endpoints: [{ address: '127.0.0.1', port: apiInbound, node: 'n1' }],
        protocol,
        balancer: 'round_robin',
      },
    ],
    accessLog,
  );
  const job: HostJob = {
    plans: [api, web],
    ...(ctx.upstreamHttp ? { upstreamHttp: ctx.upstreamHttp } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
  const path = join(ctx.dir, `${id}.job.json`);
  writeFileSync(path, JSON.stringify(job));
  const child = ctx.group.node(id, hostScript, [path], nodeArgs);
  const ready = JSON.parse(await child.waitLine(READY_MARK, START_TIMEOUT_MS)) as HostReady;
  const port = ready.upstreams[1]?.api;
  if (!port) {
    await ctx.group.stop(child);
    throw new Error(`${id}: the web proxy reported no upstream port for api`);
  }
  return { child, port, workerPids: ready.workerPids ?? [] };
}

/**
 * The HTTP/2 pair of an earlier Trellis build, measured in the same run as today's (the
 * issue's "≥ 3× today, same run"): BENCH_DATAPLANE_BEFORE_DIST names that build's dist/
 * directory (its node_modules resolvable from it), BENCH_DATAPLANE_BEFORE_LABEL what to call it.
 */
function beforePair(): PairSpec {
  const dist = process.env.BENCH_DATAPLANE_BEFORE_DIST?.trim();
  const name = process.env.BENCH_DATAPLANE_BEFORE_LABEL?.trim() || 'an earlier build';
  const host = dist ? join(dist, 'bench', 'dataplane', 'proxy-host.js') : '';
  return {
    id: ROW.grpcBefore,
    label: `Trellis pair before (${name}), protocol http2`,
    http: 'h2',
    trellis: true,
    proxies: 2,
    unavailable: ({ app }) =>
      !dist
        ? 'BENCH_DATAPLANE_BEFORE_DIST is not set (the dist/ of an earlier build to compare with)'
        : !existsSync(host)
          ? `${host} does not exist`
          : (generatorMissing('h2') ??
            (app.h2cPort === undefined ? 'the app has no h2c listener' : undefined)),
    async start(ctx) {
      const { child, port } = await startTrellisHost(
        ctx,
        ROW.grpcBefore,
        'http2',
        undefined,
        [],
        host,
      );
      return { port, ...oneProcess('trellis', child), stop: () => ctx.group.stop(child) };
    },
  };
}

function trellisPair(id: string, label: string, protocol: Protocol, accessLog = false): PairSpec {
  const http = protocol === 'http2' || protocol === 'grpc' ? 'h2' : 'h1';
  return {
    id,
    label,
    http,
    trellis: true,
    proxies: 2,
    unavailable: ({ app }) =>
      generatorMissing(http) ??
      (http === 'h2' && app.h2cPort === undefined ? 'the app has no h2c listener' : undefined),
    async start(ctx) {
      const { child, port } = await startTrellisHost(
        ctx,
        id,
        protocol,
        undefined,
        [],
        PROXY_HOST,
        accessLog,
      );
      return {
        port,
        ...oneProcess('trellis', child),
        stop: () => ctx.group.stop(child),
      };
    },
  };
}

/**
 * The Trellis HTTP/1.1 pair in N proxy workers (BENCH_DATAPLANE_PROXY_WORKERS, default 2), as
 * an agent with `proxy_workers = N` runs them; the row's CPU is the sum over the workers.
 */
function trellisWorkersPair(): PairSpec {
  const workers = Number(process.env.BENCH_DATAPLANE_PROXY_WORKERS ?? '2');
  return {
    id: 'trellis-http-workers',
    label: `Trellis pair, protocol http, ${workers || 'N'} proxy workers`,
    http: 'h1',
    trellis: true,
    proxies: 2,
    unavailable: () =>
      generatorMissing('h1') ??
      (Number.isSafeInteger(workers) && workers > 0
        ? undefined
        : 'BENCH_DATAPLANE_PROXY_WORKERS is not a positive number'),
    async start(ctx) {
      const { child, port, workerPids } = await startTrellisHost(
        ctx,
        'trellis-http-workers',
        'http',
        workers,
      );
      const alive = (pid: number): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      return {
        port,
        // The workers carry the traffic; the host (the agent's role) is counted too.
        cpuPids: () =>
          Object.fromEntries([
            [`${PROXY_KEY}trellis`, child.pid],
            ...workerPids.map((pid, i) => [`${PROXY_KEY}worker-${i + 1}`, pid]),
          ]) as Record<string, number>,
        alive: () => child.running() && workerPids.every(alive),
        stop: () => ctx.group.stop(child),
      };
    },
  };
}

// ---- HAProxy ------------------------------------------------------------------------------

interface HaproxyShape {
  threads: number;
  h2: boolean;
  listen: number;
  /** The port between the two sides (the mTLS hop). */
  mid: number;
  appPort: number;
  dir: string;
}

/**
 * One HAProxy process holding both sides of the mTLS pair, as one `trellis dev` holds both
 * proxies: web_out (plain, from the generator) -> api_mtls (TLS, our leaf presented, the
 * server's chain verified) -> api_in (TLS, client certificate required and chain verified,
 * the caller's identity passed on in a header as Trellis's XFCC) -> app.
 */
export function haproxyConfig(s: HaproxyShape): string {
  const f = (name: string): string => join(s.dir, name);
  return `global
    nbthread ${s.threads}
    # HAProxy raises its FD limit to about 2 x maxconn; keep that under a 20,000 ulimit.
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend web_out
    bind 127.0.0.1:${s.listen}${s.h2 ? ' proto h2' : ''}
    default_backend api_mtls

backend api_mtls
    http-reuse always
    server api1 127.0.0.1:${s.mid} ssl verify required ca-file ${f('root.pem')} crt ${f('web.pem')}${s.h2 ? ' alpn h2' : ''}

frontend api_in
    bind 127.0.0.1:${s.mid} ssl crt ${f('api.pem')} ca-file ${f('root.pem')} verify required${s.h2 ? ' alpn h2' : ''}
    http-request set-header X-Forwarded-Client-Cert "By=${spiffeUri('api')};Hash=%[ssl_c_sha1,hex]"
    default_backend app

backend app
    http-reuse always
    server app1 127.0.0.1:${s.appPort}${s.h2 ? ' proto h2' : ''}
`;
}

function haproxyPair(id: string, label: string, threads: number, http: 'h1' | 'h2'): PairSpec {
  return {
    id,
    label,
    http,
    trellis: false,
    proxies: 2,
    unavailable: ({ app }) =>
      reasons(
        generatorMissing(http),
        haproxyPath() ? undefined : missing('haproxy', 'haproxy', 'BENCH_HAPROXY'),
        http === 'h2' && app.h2cPort === undefined ? 'the app has no h2c listener' : undefined,
      ),
    async start(ctx) {
      const dir = ctx.dir;
      writeFileSync(join(dir, 'root.pem'), ctx.certs.rootPem);
      const pem = (l: TestLeaf): string => `${l.certChain.trim()}\n${l.key.trim()}\n`;
      writeFileSync(join(dir, 'web.pem'), pem(ctx.certs.web), { mode: 0o600 });
      writeFileSync(join(dir, 'api.pem'), pem(ctx.certs.api), { mode: 0o600 });
      const [listen, mid] = [await freePort(), await freePort()];
      const cfg = join(dir, `${id}.cfg`);
      writeFileSync(
        cfg,
        haproxyConfig({
          threads,
          h2: http === 'h2',
          listen,
          mid,
          appPort: appPort(ctx.app, http),
          dir,
        }),
      );
      const child = ctx.group.spawn({
        name: id,
        command: haproxyPath()!,
        args: ['-f', cfg, '-db'],
      });
      try {
        await waitPorts([listen, mid], START_TIMEOUT_MS, id, child.running);
      } catch (err) {
        await ctx.group.stop(child);
        throw new Error(`${String(err)}\n${child.output()}`);
      }
      return { port: listen, ...oneProcess('haproxy', child), stop: () => ctx.group.stop(child) };
    },
  };
}

// ---- Direct -------------------------------------------------------------------------------

function directPair(id: string, label: string, http: 'h1' | 'h2'): PairSpec {
  return {
    id,
    label,
    http,
    trellis: false,
    proxies: 0,
    unavailable: ({ app }) =>
      generatorMissing(http) ??
      (http === 'h2' && app.h2cPort === undefined ? 'the app has no h2c listener' : undefined),
    start(ctx) {
      return Promise.resolve({
        port: appPort(ctx.app, http),
        cpuPids: () => ({}),
        alive: () => true,
        stop: () => Promise.resolve(),
      });
    },
  };
}

/** Row ids the goals read. */
export const ROW = {
  direct: 'direct',
  haproxy1: 'haproxy-1',
  haproxy2: 'haproxy-2',
  tcp: 'trellis-tcp',
  http: 'trellis-http',
  httpLog: 'trellis-http-log',
  workers: 'trellis-http-workers',
  h2direct: 'h2-direct',
  h2haproxy: 'h2-haproxy-1',
  grpc: 'trellis-grpc',
  grpcBefore: 'trellis-grpc-before',
} as const;

/** The rows, in the order they run and appear; the first of each kind is the baseline. */
export const PAIRS: readonly PairSpec[] = [
  directPair(ROW.direct, 'nginx direct', 'h1'),
  haproxyPair(ROW.haproxy1, 'HAProxy mTLS pair, one process, nbthread 1', 1, 'h1'),
  haproxyPair(ROW.haproxy2, 'HAProxy mTLS pair, one process, nbthread 2', 2, 'h1'),
  trellisPair(ROW.tcp, 'Trellis pair, one process, protocol tcp', 'tcp'),
  trellisPair(ROW.http, 'Trellis pair, one process, protocol http', 'http'),
  trellisPair(ROW.httpLog, 'Trellis pair, one process, protocol http, access log on', 'http', true),
  trellisWorkersPair(),
  directPair(ROW.h2direct, 'nginx direct (h2c)', 'h2'),
  haproxyPair(ROW.h2haproxy, 'HAProxy mTLS pair, h2 both hops, nbthread 1', 1, 'h2'),
  // Access log on, as the earlier build's HTTP/2 row (it always logs) that this row is held to.
  trellisPair(ROW.grpc, 'Trellis pair, one process, protocol http2, access log on', 'http2', true),
  beforePair(),
];
