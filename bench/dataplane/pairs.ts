/**
 * The paths the data-plane benchmark drives load through, each a "pair" that starts its
 * processes and says where the load goes. Adding a row is adding an entry to PAIRS:
 *
 *   direct          the load generator straight to the app
 *   trellis-http    web's ServiceProxy (upstream listener) -> mTLS -> api's ServiceProxy
 *                   (inbound, HTTP: per-request intentions, XFCC) -> app
 *   trellis-tcp     the same two proxies with protocol "tcp" (opaque bytes over mTLS)
 *   haproxy         Debian's HAProxy as the same mTLS pair, `mode http`, one thread each
 *
 * Each proxy runs in a process of its own so its CPU time can be read from /proc.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Protocol, ProxyPlan } from '../../src/proxy/index.js';
import { freePort } from '../../test/helpers/net.js';
import { spiffeUri, type TestLeaf } from '../../test/helpers/mesh-ca.js';
import { waitPorts, type Child, type ProcessGroup } from './children.js';
import { READY_MARK } from './types.js';

const PROXY_HOST = fileURLToPath(new URL('./proxy-host.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;
/** Trellis checks this itself; the leaves' own validity (1 h) is what TLS peers check. */
const PLAN_VALID_MS = 24 * 3600_000;

export interface MeshCerts {
  rootPem: string;
  web: TestLeaf;
  api: TestLeaf;
}

export interface PairContext {
  group: ProcessGroup;
  /** A temp directory for plans and configs (removed with the group). */
  dir: string;
  appPort: number;
  certs: MeshCerts;
}

export interface RunningPair {
  /** The port on 127.0.0.1 the load generator sends to. */
  port: number;
  /** The client-side (caller's) proxy process, if any. */
  client?: Child;
  /** The server-side (callee's) proxy process, if any. */
  server?: Child;
  stop(): Promise<void>;
}

export interface PairSpec {
  /** Short id (used in logs). */
  id: string;
  /** Row label in the report. */
  label: string;
  /** Whether this row is Trellis (the goals are evaluated for these rows). */
  trellis: boolean;
  /** The pair the goals compare Trellis against. */
  reference?: boolean;
  /** Why this pair cannot run on this machine, or undefined when it can. */
  unavailable(): string | undefined;
  start(ctx: PairContext): Promise<RunningPair>;
}

// ---- Trellis ------------------------------------------------------------------------------

function trellisPlan(
  ctx: PairContext,
  service: 'web' | 'api',
  protocol: Protocol,
  upstreams: ProxyPlan['upstreams'],
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
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: service === 'api' ? ctx.appPort : 1 },
      protocol,
    },
    upstreams,
  };
}

interface HostPorts {
  inbound: number;
  upstreams: Record<string, number>;
}

async function startProxyHost(
  ctx: PairContext,
  name: string,
  plan: ProxyPlan,
  upstreamHttp: 'h2' | 'http1' = 'h2',
): Promise<{ child: Child; ports: HostPorts }> {
  const path = join(ctx.dir, `${name}.plan.json`);
  writeFileSync(path, JSON.stringify(plan));
  const child = ctx.group.node(name, PROXY_HOST, [path, upstreamHttp]);
  const ports = JSON.parse(await child.waitLine(READY_MARK, START_TIMEOUT_MS)) as HostPorts;
  return { child, ports };
}

/** `upstreamHttp`: how web's proxy talks HTTP to api's (the HTTP/2-vs-HTTP/1.1 comparison). */
function trellisPair(protocol: Protocol, upstreamHttp: 'h2' | 'http1' = 'h2'): PairSpec {
  const id = `trellis-${protocol}${upstreamHttp === 'http1' ? '-h1' : ''}`;
  return {
    id,
    label:
      protocol === 'tcp'
        ? 'Trellis (tcp)'
        : `Trellis (${protocol}, ${upstreamHttp === 'h2' ? 'HTTP/2' : 'HTTP/1.1 pool'} between proxies)`,
    trellis: true,
    unavailable: () => undefined,
    async start(ctx) {
      const api = await startProxyHost(ctx, `${id}-api`, trellisPlan(ctx, 'api', protocol, []));
      const web = await startProxyHost(
        ctx,
        `${id}-web`,
        trellisPlan(ctx, 'web', protocol, [
          {
            destination: 'api',
            bindAddress: '127.0.0.1',
            bindPort: 0,
            identity: spiffeUri('api'),
            endpoints: [{ address: '127.0.0.1', port: api.ports.inbound, node: 'n1' }],
            protocol,
            balancer: 'round_robin',
          },
        ]),
        upstreamHttp,
      );
      const port = web.ports.upstreams.api;
      if (!port) throw new Error(`the web proxy reported no upstream port for api`);
      return {
        port,
        client: web.child,
        server: api.child,
        async stop() {
          await ctx.group.stop(web.child);
          await ctx.group.stop(api.child);
        },
      };
    },
  };
}

// ---- HAProxy ------------------------------------------------------------------------------

/** The haproxy binary: BENCH_HAPROXY, else `haproxy` on PATH, else /usr/sbin/haproxy. */
export function haproxyPath(): string | undefined {
  const given = process.env.BENCH_HAPROXY?.trim();
  if (given) return existsSync(given) ? given : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, 'haproxy');
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** "HAProxy version 2.6.12-1+deb12u3 2025/10/03" -> "2.6.12-1+deb12u3". */
export function haproxyVersion(): string | undefined {
  const bin = haproxyPath();
  if (!bin) return undefined;
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5_000 });
  return /version (\S+)/.exec(r.stdout ?? '')?.[1];
}

const HAPROXY_COMMON = `global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s
`;

/** The caller's side: plaintext from the app, mTLS (chain verified, our leaf presented) out. */
function haproxyClientConfig(listen: number, serverPort: number, dir: string): string {
  return `${HAPROXY_COMMON}
frontend web_out
    bind 127.0.0.1:${listen}
    default_backend api

backend api
    http-reuse always
    server api1 127.0.0.1:${serverPort} ssl verify required ca-file ${join(dir, 'root.pem')} crt ${join(dir, 'web.pem')}
`;
}

/**
 * The callee's side: mTLS in (client certificate required, chained to the root), the caller's
 * identity passed to the app in a header (as Trellis's XFCC), plaintext to the app.
 */
function haproxyServerConfig(listen: number, appPort: number, dir: string): string {
  return `${HAPROXY_COMMON}
frontend api_in
    bind 127.0.0.1:${listen} ssl crt ${join(dir, 'api.pem')} ca-file ${join(dir, 'root.pem')} verify required
    http-request set-header X-Forwarded-Client-Cert "By=${spiffeUri('api')};Hash=%[ssl_c_sha1,hex]"
    default_backend app

backend app
    http-reuse always
    server app1 127.0.0.1:${appPort}
`;
}

const haproxyPair: PairSpec = {
  id: 'haproxy',
  label: 'HAProxy (mTLS, http)',
  trellis: false,
  reference: true,
  unavailable: () =>
    haproxyPath()
      ? undefined
      : 'haproxy is not installed (apt-get install haproxy, or set BENCH_HAPROXY)',
  async start(ctx) {
    const bin = haproxyPath()!;
    const dir = ctx.dir;
    writeFileSync(join(dir, 'root.pem'), ctx.certs.rootPem);
    const pem = (l: TestLeaf): string => `${l.certChain.trim()}\n${l.key.trim()}\n`;
    writeFileSync(join(dir, 'web.pem'), pem(ctx.certs.web), { mode: 0o600 });
    writeFileSync(join(dir, 'api.pem'), pem(ctx.certs.api), { mode: 0o600 });
    const [clientPort, serverPort] = [await freePort(), await freePort()];
    const serverCfg = join(dir, 'haproxy-api.cfg');
    const clientCfg = join(dir, 'haproxy-web.cfg');
    writeFileSync(serverCfg, haproxyServerConfig(serverPort, ctx.appPort, dir));
    writeFileSync(clientCfg, haproxyClientConfig(clientPort, serverPort, dir));
    const server = ctx.group.spawn({
      name: 'haproxy-api',
      command: bin,
      args: ['-f', serverCfg, '-db'],
    });
    await waitPorts([serverPort], START_TIMEOUT_MS, 'haproxy (server side)', server.running).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\n${server.output()}`);
      },
    );
    const client = ctx.group.spawn({
      name: 'haproxy-web',
      command: bin,
      args: ['-f', clientCfg, '-db'],
    });
    await waitPorts([clientPort], START_TIMEOUT_MS, 'haproxy (client side)', client.running).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\n${client.output()}`);
      },
    );
    return {
      port: clientPort,
      client,
      server,
      async stop() {
        await ctx.group.stop(client);
        await ctx.group.stop(server);
      },
    };
  },
};

// ---- Direct -------------------------------------------------------------------------------

const directPair: PairSpec = {
  id: 'direct',
  label: 'Direct (no proxy)',
  trellis: false,
  unavailable: () => undefined,
  start(ctx) {
    return Promise.resolve({ port: ctx.appPort, stop: () => Promise.resolve() });
  },
};

/** The rows, in the order they run and appear; the first is the baseline the others add to. */
export const PAIRS: readonly PairSpec[] = [
  directPair,
  trellisPair('http'),
  trellisPair('http', 'http1'),
  trellisPair('tcp'),
  haproxyPair,
];
