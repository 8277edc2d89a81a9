/**
 * Where a daemon's settings come from: a flag given on the command line wins over a setting in a
 * config-dir file, which wins over the default. The resolve functions are pure, so the precedence
 * rules are unit-tested without starting anything; settings are read once, at start.
 */
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../httpkit/conn-limits.js';
import { ConfigLoadError } from '../agent/agent.js';
import { UsageError } from '../cli/index.js';
import {
  formatDiagnostic,
  loadConfigDir,
  type AgentSettings,
  type LogLevel,
} from '../config/index.js';
import { describeError } from '../core/index.js';
import { parseIpv4Range } from '../core/ipv4-range.js';
import { parseRecursorAddress } from '../config/dns-values.js';
import { etcdEndpoint, etcdPrefix, type StoreKind } from '../config/etcd-values.js';
import type { Logger } from '../telemetry/logger.js';
import type { AgentArgs, AgentDnsSettings } from './agent-command.js';
import type { EtcdSettings, ServerArgs } from './server-command.js';

/** The daemon flags as given on the command line; undefined when not given. */
export interface DaemonFlags {
  node?: string;
  datacenter?: string;
  dataDir?: string;
  advertise?: string;
  bind?: string;
  /** The global --http-addr, only when given explicitly (its default is weaker than a file). */
  httpAddr?: string;
  servers?: string[];
  enableScriptChecks?: boolean;
  proxyWorkers?: number;
  dataPlaneSocket?: string;
  nodeMeta?: Record<string, string>;
  logLevel?: LogLevel;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  syncIntervalMs?: number;
  snapshotEvery?: number;
  sessionMinTtlMs?: number;
  nodeGraceMs?: number;
  caClockSkewMs?: number;
  aclDefaultPolicy?: 'allow' | 'deny';
  /** --metrics-bind: host:port, or `off`. */
  metricsBind?: string;
  /** --dns-bind: host:port, or `off`. */
  dnsBind?: string;
  /** --recursor (repeatable): replaces `recursors` as a whole. */
  recursors?: string[];
  /** --virtual-ip-range (server). */
  virtualIpRange?: string;
  /** --http-max-conns-per-client: 0 = no limit. */
  httpMaxConnsPerClient?: number;
  /** --http-handshake-timeout, ms. */
  httpHandshakeTimeoutMs?: number;
  /** --store (server). */
  store?: StoreKind;
  /** --etcd-endpoints (comma-separated or repeated). */
  etcdEndpoints?: string[];
  etcdPrefix?: string;
  etcdCaFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  etcdUsername?: string;
  /** Whether $TRELLIS_ETCD_PASSWORD is set (the value itself never enters the settings). */
  etcdPasswordSet?: boolean;
  /** --ca-encryption-key-file (server, with --store etcd). */
  caEncryptionKeyFile?: string;
  /** --ca-encryption-previous-key-file, repeatable (server, with --store etcd). */
  caEncryptionPreviousKeyFiles?: string[];
}

export const DEFAULT_DATACENTER = 'dc1';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
export const DEFAULT_SERVER_BIND = '0.0.0.0:8500';
const DEFAULT_AGENT_ADVERTISE = '127.0.0.1';
/** Where a Consul agent answers DNS by default; `off` turns it off. */
export const DEFAULT_AGENT_DNS_ADDR = '127.0.0.1:8600';
const DEFAULT_PORT = 8500;

export type ResolvedAgent = Omit<AgentArgs, 'configDir' | 'token' | 'nodeId'> & {
  logLevel: LogLevel;
  /** The agent token from `acl { tokens { agent } }`; --token wins over it. */
  fileToken?: string;
};
export type ResolvedServer = Omit<ServerArgs, 'configDir'> & { logLevel: LogLevel };

const NO_DATA_DIR = 'no data dir: pass --data-dir or set data_dir in a config file';

/** `httpAddrDefault` is what --http-addr defaults to ($TRELLIS_HTTP_ADDR or 127.0.0.1:8500). */
export function resolveAgent(
  flags: DaemonFlags,
  file: AgentSettings,
  httpAddrDefault: string,
): ResolvedAgent {
  const servers = flags.servers ?? file.retryJoin?.map(withPort);
  if (!servers || servers.length === 0)
    throw new UsageError('no server address: pass --server or set retry_join in a config file');
  const dataDir = flags.dataDir ?? file.dataDir;
  if (!dataDir) throw new UsageError(NO_DATA_DIR);
  const node = flags.node ?? file.nodeName;
  const heartbeatIntervalMs = flags.heartbeatIntervalMs ?? file.heartbeatIntervalMs;
  const heartbeatTtlMs = flags.heartbeatTtlMs ?? file.heartbeatTtlMs;
  const syncIntervalMs = flags.syncIntervalMs ?? file.syncIntervalMs;
  const proxyWorkers = flags.proxyWorkers ?? file.proxyWorkers;
  const dataPlaneSocket = flags.dataPlaneSocket ?? file.dataPlaneSocket;
  return {
    servers,
    dataDir,
    datacenter: flags.datacenter ?? file.datacenter ?? DEFAULT_DATACENTER,
    httpAddr: flags.bind ?? flags.httpAddr ?? file.httpAddr ?? httpAddrDefault,
    advertise: flags.advertise ?? file.advertiseAddr ?? DEFAULT_AGENT_ADVERTISE,
    enableScriptChecks: flags.enableScriptChecks ?? file.enableScriptChecks ?? false,
    // Per key: a --node-meta flag replaces only the file's value for that key.
    nodeMeta: { ...file.nodeMeta, ...flags.nodeMeta },
    logLevel: flags.logLevel ?? file.logLevel ?? DEFAULT_LOG_LEVEL,
    ...(node !== undefined ? { node } : {}),
    ...(heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs } : {}),
    ...(heartbeatTtlMs !== undefined ? { heartbeatTtlMs } : {}),
    ...(syncIntervalMs !== undefined ? { syncIntervalMs } : {}),
    ...(proxyWorkers !== undefined ? { proxyWorkers } : {}),
    ...(dataPlaneSocket !== undefined ? { dataPlaneSocket } : {}),
    ...(file.aclAgentToken ? { fileToken: file.aclAgentToken } : {}),
    ...listenerAddr('metricsAddr', flags.metricsBind ?? file.metricsAddr),
    ...listenerAddr('dnsAddr', flags.dnsBind ?? file.dnsAddr ?? DEFAULT_AGENT_DNS_ADDR),
    ...dnsSettings(flags, file),
    httpLimits: httpLimits(flags, file),
  };
}

/** Flag > file > default, per limit (Consul's defaults: 200 connections, 5 s). */
function httpLimits(flags: DaemonFlags, file: AgentSettings): ConnectionLimits {
  return {
    maxPerClient:
      flags.httpMaxConnsPerClient ??
      file.httpMaxConnsPerClient ??
      DEFAULT_CONNECTION_LIMITS.maxPerClient,
    handshakeTimeoutMs:
      flags.httpHandshakeTimeoutMs ??
      file.httpHandshakeTimeoutMs ??
      DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
  };
}

/** The DNS settings that were set (unset ones take their defaults where DNS starts). */
function dnsSettings(flags: DaemonFlags, file: AgentSettings): { dns?: AgentDnsSettings } {
  for (const r of flags.recursors ?? []) {
    try {
      parseRecursorAddress(r);
    } catch (err) {
      throw new UsageError(`--recursor: ${(err as Error).message}`);
    }
  }
  const recursors = flags.recursors ?? file.recursors;
  const dns: AgentDnsSettings = {
    ...(recursors !== undefined ? { recursors } : {}),
    ...(file.domain !== undefined ? { domain: file.domain } : {}),
    ...(file.dnsNodeTtlMs !== undefined ? { nodeTtlMs: file.dnsNodeTtlMs } : {}),
    ...(file.dnsServiceTtlMs !== undefined ? { serviceTtlMs: file.dnsServiceTtlMs } : {}),
    ...(file.dnsOnlyPassing !== undefined ? { onlyPassing: file.dnsOnlyPassing } : {}),
    ...(file.dnsRecursorTimeoutMs !== undefined
      ? { recursorTimeoutMs: file.dnsRecursorTimeoutMs }
      : {}),
    ...(file.dnsResolvConf !== undefined ? { resolvConf: file.dnsResolvConf } : {}),
  };
  return Object.keys(dns).length > 0 ? { dns } : {};
}

/** --virtual-ip-range, else `virtual_ip_range`; unset means the catalog's 240.0.0.0/4. */
function vipRange(flags: DaemonFlags, file: AgentSettings): { virtualIpRange?: string } {
  if (flags.virtualIpRange === undefined)
    return file.virtualIpRange === undefined ? {} : { virtualIpRange: file.virtualIpRange };
  try {
    parseIpv4Range(flags.virtualIpRange);
  } catch (err) {
    throw new UsageError(`--virtual-ip-range: ${(err as Error).message}`);
  }
  return { virtualIpRange: flags.virtualIpRange };
}

/** An optional listener (metrics, DNS): none unless asked for (`off` turns a file's off). */
function listenerAddr<K extends 'metricsAddr' | 'dnsAddr'>(
  key: K,
  v: string | undefined,
): Partial<Record<K, string>> {
  return v === undefined || v === 'off' ? {} : ({ [key]: v } as Partial<Record<K, string>>);
}

export function resolveServer(flags: DaemonFlags, file: AgentSettings): ResolvedServer {
  const dataDir = flags.dataDir ?? file.dataDir;
  if (!dataDir) throw new UsageError(NO_DATA_DIR);
  const node = flags.node ?? file.nodeName;
  const advertise = flags.advertise ?? file.advertiseAddr;
  const snapshotEvery = flags.snapshotEvery ?? file.snapshotEvery;
  const proxyWorkers = flags.proxyWorkers ?? file.proxyWorkers;
  return {
    dataDir,
    datacenter: flags.datacenter ?? file.datacenter ?? DEFAULT_DATACENTER,
    // Not http_addr: a file shared with the agents would make the server listen on loopback.
    bind: flags.bind ?? file.bindAddr ?? DEFAULT_SERVER_BIND,
    logLevel: flags.logLevel ?? file.logLevel ?? DEFAULT_LOG_LEVEL,
    enableScriptChecks: file.enableScriptChecks ?? false,
    ...(file.nodeMeta ? { nodeMeta: file.nodeMeta } : {}),
    ...(node !== undefined ? { node } : {}),
    ...(advertise !== undefined ? { advertise } : {}),
    ...(snapshotEvery !== undefined ? { snapshotEvery } : {}),
    ...(proxyWorkers !== undefined ? { proxyWorkers } : {}),
    ...(flags.sessionMinTtlMs !== undefined ? { sessionMinTtlMs: flags.sessionMinTtlMs } : {}),
    ...(flags.nodeGraceMs !== undefined ? { nodeGraceMs: flags.nodeGraceMs } : {}),
    ...(flags.caClockSkewMs !== undefined ? { caClockSkewMs: flags.caClockSkewMs } : {}),
    ...aclSettings(flags, file),
    ...vipRange(flags, file),
    ...storeSettings(flags, file),
    httpLimits: httpLimits(flags, file),
  };
}

/** Each etcd setting: its flag, its file key, and the value that applies (flag > file). */
function etcdSettingValues(
  flags: DaemonFlags,
  file: AgentSettings,
): { flag: string; key: string; value: unknown; fromFlag: boolean }[] {
  const pick = (flag: string, key: string, f: unknown, v: unknown) => ({
    flag,
    key,
    value: f ?? v,
    fromFlag: f !== undefined,
  });
  return [
    pick('--etcd-endpoints', 'etcd.endpoints', flags.etcdEndpoints, file.etcdEndpoints),
    pick('--etcd-prefix', 'etcd.prefix', flags.etcdPrefix, file.etcdPrefix),
    pick('--etcd-ca-file', 'etcd.ca_file', flags.etcdCaFile, file.etcdCaFile),
    pick('--etcd-cert-file', 'etcd.cert_file', flags.etcdCertFile, file.etcdCertFile),
    pick('--etcd-key-file', 'etcd.key_file', flags.etcdKeyFile, file.etcdKeyFile),
    pick('--etcd-username', 'etcd.username', flags.etcdUsername, file.etcdUsername),
    pick(
      '--ca-encryption-key-file',
      'ca_encryption_key_file',
      flags.caEncryptionKeyFile,
      file.caEncryptionKeyFile,
    ),
    pick(
      '--ca-encryption-previous-key-file',
      'ca_encryption_previous_key_files',
      flags.caEncryptionPreviousKeyFiles,
      file.caEncryptionPreviousKeyFiles,
    ),
  ];
}

/**
 * `--store etcd` with its connection settings, checked as a whole: etcd settings with the
 * embedded store, a certificate without its key or TLS files with http:// endpoints have two
 * readings (or none), so they are refused.
 */
function storeSettings(
  flags: DaemonFlags,
  file: AgentSettings,
): { etcd?: EtcdSettings; caEncryptionKeyFile?: string; caEncryptionPreviousKeyFiles?: string[] } {
  for (const e of flags.etcdEndpoints ?? []) {
    const problem = etcdEndpoint(e);
    if (problem) throw new UsageError(`--etcd-endpoints: ${problem}`);
  }
  if (flags.etcdPrefix !== undefined) {
    const problem = etcdPrefix(flags.etcdPrefix);
    if (problem) throw new UsageError(`--etcd-prefix: ${problem}`);
  }
  const store = flags.store ?? file.store ?? 'embedded';
  const values = etcdSettingValues(flags, file);
  const name = (i: number): string => (values[i]!.fromFlag ? values[i]!.flag : values[i]!.key);
  const given = values.map((v, i) => (v.value === undefined ? '' : name(i))).filter(Boolean);
  const storeName = flags.store !== undefined ? '--store' : 'store';
  if (store === 'embedded') {
    if (given.length > 0)
      throw new UsageError(
        `${given.join(', ')} ${given.length === 1 ? 'is' : 'are'} set but the store is "embedded": pass --store etcd (store = "etcd") or remove ${given.length === 1 ? 'it' : 'them'}`,
      );
    return {};
  }
  const [
    endpoints,
    prefix,
    caFile,
    certFile,
    keyFile,
    username,
    caEncryptionKeyFile,
    caEncryptionPreviousKeyFiles,
  ] = values.map((v) => v.value) as [
    string[] | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string[] | undefined,
  ];
  if (!endpoints || endpoints.length === 0)
    throw new UsageError(
      `${storeName} "etcd" needs etcd endpoints: pass --etcd-endpoints or set etcd.endpoints`,
    );
  const schemes = new Set(endpoints.map((e) => new URL(e).protocol));
  if (schemes.size > 1)
    throw new UsageError(
      `${name(0)}: mixes http:// and https:// endpoints; use one scheme for every member`,
    );
  const tls = schemes.has('https:');
  const files = [2, 3, 4].filter((i) => values[i]!.value !== undefined);
  if (!tls && files.length > 0)
    throw new UsageError(
      `${files.map(name).join(', ')} set but the etcd endpoints use http://: use https:// endpoints or remove the TLS files`,
    );
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError(
      certFile === undefined
        ? `${name(4)} is set without ${values[3]!.flag} / ${values[3]!.key}: give the client certificate too`
        : `${name(3)} is set without ${values[4]!.flag} / ${values[4]!.key}: give its private key too`,
    );
  if (username !== undefined && !flags.etcdPasswordSet)
    throw new UsageError(
      `${name(5)} is set but TRELLIS_ETCD_PASSWORD is not: put the etcd password in that environment variable`,
    );
  if (username === undefined && flags.etcdPasswordSet)
    throw new UsageError(
      'TRELLIS_ETCD_PASSWORD is set but no etcd user: pass --etcd-username or set etcd.username',
    );
  // CA private keys live in etcd, encrypted with this key; there is no unencrypted mode.
  if (caEncryptionKeyFile === undefined)
    throw new UsageError(
      `${storeName} "etcd" needs --ca-encryption-key-file (ca_encryption_key_file): a file with 32 random bytes in base64, the same on every server (make one with \`openssl rand -base64 32\`; docs/ha.md)`,
    );
  return {
    caEncryptionKeyFile,
    ...(caEncryptionPreviousKeyFiles?.length ? { caEncryptionPreviousKeyFiles } : {}),
    etcd: {
      endpoints,
      prefix: prefix ?? '/trellis',
      ...(caFile !== undefined ? { caFile } : {}),
      ...(certFile !== undefined ? { certFile } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
      ...(username !== undefined ? { username } : {}),
    },
  };
}

/**
 * ACLs are on unless `acl { enabled = false }` (Consul's default is off; a Trellis server
 * guards the mesh CA and intentions, so it starts with them on). Off with a deny default
 * policy asked for has two readings, so it is refused.
 */
function aclSettings(
  flags: DaemonFlags,
  file: AgentSettings,
): Pick<ServerArgs, 'aclEnabled' | 'aclDefaultPolicy'> {
  const enabled = file.aclEnabled ?? true;
  const policy = flags.aclDefaultPolicy ?? file.aclDefaultPolicy;
  if (!enabled && policy === 'deny')
    throw new UsageError(
      `${flags.aclDefaultPolicy ? '--acl-default-policy' : 'acl.default_policy'} "deny" has no effect with acl.enabled = false: remove one of them`,
    );
  // Production servers deny what no rule allows, as Consul recommends.
  return { aclEnabled: enabled, aclDefaultPolicy: enabled ? (policy ?? 'deny') : 'allow' };
}

/** Consul's retry_join names a host; a Trellis server is an HTTP address with a port. */
function withPort(addr: string): string {
  if (/^\[.*\]:\d+$/.test(addr) || /^[^:]+:\d+$/.test(addr)) return addr;
  return `${addr.includes(':') && !addr.startsWith('[') ? `[${addr}]` : addr}:${DEFAULT_PORT}`;
}

/** The file key of each setting, for messages. */
const SETTING_NAMES: Record<string, string> = {
  servers: 'retry_join',
  node: 'node_name',
  datacenter: 'datacenter',
  dataDir: 'data_dir',
  httpAddr: 'http_addr',
  advertise: 'advertise_addr',
  enableScriptChecks: 'enable_script_checks',
  proxyWorkers: 'proxy_workers',
  dataPlaneSocket: 'data_plane_socket',
  nodeMeta: 'node_meta',
  logLevel: 'log_level',
  heartbeatIntervalMs: 'heartbeat_interval',
  heartbeatTtlMs: 'heartbeat_ttl',
  syncIntervalMs: 'sync_interval',
  bind: 'bind_addr',
  snapshotEvery: 'snapshot_every',
  metricsAddr: 'metrics_addr',
  dnsAddr: 'dns_addr',
  dns: 'recursors/domain/dns_config',
  virtualIpRange: 'virtual_ip_range',
  httpLimits: 'limits.http_max_conns_per_client/http_handshake_timeout',
  nodeGraceMs: '--node-grace',
  caClockSkewMs: '--ca-clock-skew',
  sessionMinTtlMs: '--session-min-ttl',
  etcd: 'store/etcd',
  caEncryptionKeyFile: 'ca_encryption_key_file',
  caEncryptionPreviousKeyFiles: 'ca_encryption_previous_key_files',
};

export interface SettingChange {
  setting: string;
  from: unknown;
  to: unknown;
}

/** What differs between two resolved settings, by file key. */
export function changedSettings<T extends object>(running: T, next: T): SettingChange[] {
  const a = running as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => ({ setting: SETTING_NAMES[k] ?? k, from: a[k], to: b[k] }));
}

const FILE_KEYS: Record<keyof AgentSettings, string> = {
  nodeName: 'node_name',
  datacenter: 'datacenter',
  dataDir: 'data_dir',
  advertiseAddr: 'advertise_addr',
  httpAddr: 'http_addr',
  retryJoin: 'retry_join',
  enableScriptChecks: 'enable_script_checks',
  proxyWorkers: 'proxy_workers',
  dataPlaneSocket: 'data_plane_socket',
  nodeMeta: 'node_meta',
  logLevel: 'log_level',
  heartbeatIntervalMs: 'heartbeat_interval',
  heartbeatTtlMs: 'heartbeat_ttl',
  syncIntervalMs: 'sync_interval',
  bindAddr: 'bind_addr',
  snapshotEvery: 'snapshot_every',
  aclEnabled: 'acl.enabled',
  aclDefaultPolicy: 'acl.default_policy',
  aclAgentToken: 'acl.tokens.agent',
  metricsAddr: 'metrics_addr',
  dnsAddr: 'dns_addr',
  recursors: 'recursors',
  domain: 'domain',
  dnsNodeTtlMs: 'dns_config.node_ttl',
  dnsServiceTtlMs: 'dns_config.service_ttl',
  dnsOnlyPassing: 'dns_config.only_passing',
  dnsRecursorTimeoutMs: 'dns_config.recursor_timeout',
  dnsResolvConf: 'dns_config.resolv_conf',
  virtualIpRange: 'virtual_ip_range',
  httpMaxConnsPerClient: 'limits.http_max_conns_per_client',
  httpHandshakeTimeoutMs: 'limits.http_handshake_timeout',
  store: 'store',
  etcdEndpoints: 'etcd.endpoints',
  etcdPrefix: 'etcd.prefix',
  etcdCaFile: 'etcd.ca_file',
  etcdCertFile: 'etcd.cert_file',
  etcdKeyFile: 'etcd.key_file',
  etcdUsername: 'etcd.username',
  caEncryptionKeyFile: 'ca_encryption_key_file',
  caEncryptionPreviousKeyFiles: 'ca_encryption_previous_key_files',
};

/** File settings the other kind of daemon uses; set here, they are ignored (and logged). */
const UNUSED: Record<'agent' | 'server', readonly (keyof AgentSettings)[]> = {
  agent: [
    'bindAddr',
    'snapshotEvery',
    'aclEnabled',
    'aclDefaultPolicy',
    'virtualIpRange',
    'store',
    'etcdEndpoints',
    'etcdPrefix',
    'etcdCaFile',
    'etcdCertFile',
    'etcdKeyFile',
    'etcdUsername',
    'caEncryptionKeyFile',
    'caEncryptionPreviousKeyFiles',
  ],
  server: [
    'retryJoin',
    'httpAddr',
    'heartbeatIntervalMs',
    'heartbeatTtlMs',
    'syncIntervalMs',
    'aclAgentToken',
    'metricsAddr',
    'dnsAddr',
    'recursors',
    'domain',
    'dnsNodeTtlMs',
    'dnsServiceTtlMs',
    'dnsOnlyPassing',
    'dnsRecursorTimeoutMs',
    'dnsResolvConf',
  ],
};

export function unusedSettings(role: 'agent' | 'server', file: AgentSettings): string[] {
  return UNUSED[role].filter((k) => file[k] !== undefined).map((k) => FILE_KEYS[k]);
}

/** The settings of a config dir (none without one); any file error is a ConfigLoadError. */
export async function readSettings(configDir: string | undefined): Promise<AgentSettings> {
  if (!configDir) return {};
  const { settings, errors } = await loadConfigDir(configDir);
  if (errors.length > 0) throw new ConfigLoadError(errors.map(formatDiagnostic));
  return settings;
}

/**
 * After a SIGHUP reload: settings are not applied while running, so say which ones changed.
 * File errors were already reported by the reload itself.
 */
export async function logRestartNeeded<T extends object>(
  configDir: string | undefined,
  running: T,
  resolve: (file: AgentSettings) => T,
  log: Logger,
): Promise<void> {
  let next: T;
  try {
    next = resolve(await readSettings(configDir));
  } catch (err) {
    if (err instanceof ConfigLoadError) return;
    log.warn(
      { err: describeError(err) },
      'the changed settings would not start; needs a restart once fixed',
    );
    return;
  }
  for (const change of changedSettings(running, next))
    log.warn(change, `setting ${change.setting} changed; needs a restart to take effect`);
}
