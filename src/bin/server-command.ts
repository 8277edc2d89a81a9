/**
 * `trellis server`: argv -> a catalog server plus the agent of its own node, whose /v1/agent/*
 * routes the server serves (as a Consul server is also an agent). Layout of --data-dir:
 *   <data-dir>/node-id   this node's UUID
 *   <data-dir>/catalog/  write-ahead log and snapshots (embedded store), CA keys
 *                        (with --store etcd the catalog itself is in etcd: docs/ha.md)
 *   <data-dir>/agent/    the node's own agent state
 */
import type { ConnectionLimits } from '../httpkit/conn-limits.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { TrellisAgent } from '../agent/agent.js';
import { agentRoutes } from '../agent/http/agent-routes.js';
import { connectRoutes } from '../agent/http/connect-routes.js';
import { startServer, type CatalogServer } from '../catalog/server.js';
import {
  describeError,
  newId,
  systemClock,
  systemRandom,
  makeConfiguredDir,
} from '../core/index.js';
import type { EtcdConnectionOptions } from '../catalog/etcd/etcd-client.js';
import { UsageError } from '../cli/index.js';
import { parseCaEncryptionKey } from '../catalog/connect/key-sealing.js';
import { auditLogger, type Logger } from '../telemetry/logger.js';
import { concretePort, dialable, splitHostPort } from './addresses.js';
import { makeAgent } from './agent-command.js';
import { nodeIdFor } from './node-id.js';

export interface ServerArgs {
  dataDir: string;
  datacenter: string;
  node?: string;
  bind: string;
  advertise?: string;
  configDir?: string;
  snapshotEvery?: number;
  sessionMinTtlMs?: number;
  nodeGraceMs?: number;
  caClockSkewMs?: number;
  /** For the server's own node, as on an agent. */
  nodeMeta?: Record<string, string>;
  enableScriptChecks?: boolean;
  /** Proxy worker processes of the server's own agent (see AgentArgs). */
  proxyWorkers?: number;
  /**
   * HTTPS API address; default: the --bind host on port 8501 (any free port when --bind asks
   * for port 0); 'off' = plain HTTP only.
   */
  httpsBind?: string;
  /** 'deny' (production default) or 'allow'. */
  aclDefaultPolicy?: 'allow' | 'deny';
  /** False: every token is ignored and everything allowed (Consul with ACLs off). Default true. */
  aclEnabled?: boolean;
  /** The IPv4 CIDR mesh services' virtual IPs come from (default 240.0.0.0/4). */
  virtualIpRange?: string;
  /** Per-client connection cap and first-request timeout of the API listeners. */
  httpLimits?: ConnectionLimits;
  /** Keep the catalog in etcd (`--store etcd`); unset: the embedded store in --data-dir. */
  etcd?: EtcdSettings;
  /** The etcd user's password ($TRELLIS_ETCD_PASSWORD); kept out of the settings compared on reload. */
  etcdPassword?: string;
  /** With `etcd`: the file holding the key CA private keys are encrypted with (base64, 32 bytes). */
  caEncryptionKeyFile?: string;
  caEncryptionPreviousKeyFiles?: string[];
  /** This server can no longer follow the etcd log (the command exits). */
  onFatal?: (err: Error) => void;
}

/** The etcd connection as configured: file names, not their contents. */
export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
}

export interface RunningServer {
  server: CatalogServer;
  agent: TrellisAgent;
  address: string;
  httpsAddress?: string;
  close(): Promise<void>;
}

export async function runServer(args: ServerArgs, log: Logger): Promise<RunningServer> {
  makeConfiguredDir(args.dataDir, 0o700, '--data-dir');
  const bind = await concretePort(args.bind, 8500);
  const { host, port } = splitHostPort(bind, 8500);
  const requested = splitHostPort(args.bind, 8500);
  const httpsBind =
    args.httpsBind === 'off'
      ? undefined
      : splitHostPort(
          args.httpsBind ?? `${joinHost(host)}:${requested.port === 0 ? 0 : 8501}`,
          8501,
        );
  const etcd = args.etcd ? etcdConnection(args.etcd, args.etcdPassword) : undefined;
  const caEncryption =
    args.caEncryptionKeyFile !== undefined
      ? {
          key: readEncryptionKey(args.caEncryptionKeyFile),
          file: args.caEncryptionKeyFile,
          previous: (args.caEncryptionPreviousKeyFiles ?? []).map((file) => ({
            key: readEncryptionKey(file, 'previous'),
            file,
          })),
        }
      : undefined;
  const nodeName = args.node ?? hostname();
  const nodeId = nodeIdFor(args.dataDir);
  const advertise = args.advertise ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  // The server's own agent acts with a per-process secret that the catalog treats as
  // management; it is never stored or shown.
  const internalSecret = newId();
  // The agent is made before the catalog (the catalog serves its routes); it resolves tokens
  // through the catalog once that exists.
  const late: { server?: CatalogServer } = {};
  const agent = makeAgent(
    {
      servers: [dialable(bind, 8500)],
      node: nodeName,
      nodeId,
      datacenter: args.datacenter,
      dataDir: join(args.dataDir, 'agent'),
      httpAddr: bind,
      advertise,
      ...(args.configDir ? { configDir: args.configDir } : {}),
      ...(args.nodeMeta ? { nodeMeta: args.nodeMeta } : {}),
      enableScriptChecks: args.enableScriptChecks ?? false,
      ...(args.proxyWorkers !== undefined ? { proxyWorkers: args.proxyWorkers } : {}),
      syncIntervalMs: 10_000,
      token: internalSecret,
    },
    log,
    true,
    async (secret) => {
      if (!late.server) throw new Error('catalog not started');
      return late.server.acl.resolve(secret);
    },
  );
  const server = await startServer({
    dataDir: join(args.dataDir, 'catalog'),
    datacenter: args.datacenter,
    nodeName,
    nodeId,
    host,
    port,
    advertiseAddr: advertise,
    clock: systemClock,
    random: systemRandom,
    newId,
    log: log.child({ component: 'catalog' }),
    audit: auditLogger(log),
    extraRoutes: (app) => {
      agentRoutes(app, agent);
      connectRoutes(app, agent);
    },
    internalSecret,
    ...(httpsBind ? { https: httpsBind } : {}),
    aclDefaultPolicy: args.aclDefaultPolicy ?? 'deny',
    aclEnabled: args.aclEnabled ?? true,
    ...(args.snapshotEvery ? { snapshotEvery: args.snapshotEvery } : {}),
    ...(args.sessionMinTtlMs !== undefined ? { sessionMinTTLms: args.sessionMinTtlMs } : {}),
    ...(args.nodeGraceMs !== undefined ? { nodeGraceMs: args.nodeGraceMs } : {}),
    ...(args.caClockSkewMs !== undefined ? { caClockSkewMs: args.caClockSkewMs } : {}),
    ...(args.virtualIpRange ? { vipRange: args.virtualIpRange } : {}),
    ...(args.httpLimits ? { httpLimits: args.httpLimits } : {}),
    ...(etcd ? { etcd } : {}),
    ...(caEncryption ? { caEncryption } : {}),
    ...(args.onFatal ? { onFatal: args.onFatal } : {}),
  });
  late.server = server;
  if (server.httpsAddress) {
    const https = splitHostPort(server.httpsAddress, 8501);
    agent.addListener({ address: https.host, port: https.port, what: "the server's HTTPS API" });
  }
  try {
    await agent.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  const started = server;
  log.info(
    {
      address: server.address,
      acl: args.aclEnabled === false ? 'disabled' : (args.aclDefaultPolicy ?? 'deny'),
      node: nodeName,
      datacenter: args.datacenter,
      dataDir: args.dataDir,
    },
    'trellis server ready',
  );
  return {
    server: started,
    agent,
    address: started.address,
    ...(started.httpsAddress ? { httpsAddress: started.httpsAddress } : {}),
    async close() {
      await agent.stop();
      await started.close();
    },
  };
}

/** Reads the TLS files named in the settings; a file that cannot be read is a usage error. */
function etcdConnection(s: EtcdSettings, password: string | undefined): EtcdConnectionOptions {
  const read = (path: string | undefined, what: string): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${what} ${path}: ${describeError(err)}`);
    }
  };
  const ca = read(s.caFile, 'etcd CA file (--etcd-ca-file / etcd.ca_file)');
  const cert = read(s.certFile, 'etcd client certificate (--etcd-cert-file / etcd.cert_file)');
  const key = read(s.keyFile, 'etcd client key (--etcd-key-file / etcd.key_file)');
  const tls = s.endpoints.some((e) => e.startsWith('https:'));
  return {
    endpoints: s.endpoints,
    prefix: s.prefix,
    ...(tls
      ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } }
      : {}),
    ...(s.username !== undefined
      ? { auth: { username: s.username, password: password ?? '' } }
      : {}),
  };
}

/** The CA encryption key file: 32 bytes in base64, or a usage error naming the file and why. */
function readEncryptionKey(path: string, which: 'current' | 'previous' = 'current'): Buffer {
  const what =
    which === 'current'
      ? 'CA encryption key file (--ca-encryption-key-file / ca_encryption_key_file)'
      : 'previous CA encryption key file (--ca-encryption-previous-key-file / ca_encryption_previous_key_files)';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${what} ${path}: ${describeError(err)}`);
  }
  try {
    return parseCaEncryptionKey(text);
  } catch (err) {
    throw new UsageError(`${what} ${path}: ${describeError(err)}`);
  }
}

function joinHost(h: string): string {
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}
