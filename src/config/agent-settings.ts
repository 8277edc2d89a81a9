/**
 * Agent and server settings in config-dir files: Consul-style top-level keys (`node_name`,
 * `retry_join`, ...) that may sit next to `service`/`check` definitions. Each file is decoded on
 * its own; mergeSettings then combines the files in name order, and a key set to two different
 * values in two places is an error naming both places.
 */
import { parseDuration } from '../core/index.js';
import { normalizeKey } from '../core/suggest.js';
import type { Entry, Position, ValueNode } from './ast.js';
import { decode, joinPath } from './decode.js';
import type { ConfigDiagnostic } from './diagnostics.js';
import { field, schema, t, type Check, type FieldSpec, type FieldType } from './schema.js';
import {
  locateDefinitions,
  serviceDefinitionFields,
  type LocatedDefinitions,
} from './service-definition.js';
import {
  atLeast,
  META_MAX_PAIRS,
  metaKey,
  metaValue,
  notEmpty,
  oneOf,
  serviceIdent,
} from './validators.js';
import { dnsDomain, recursorAddress, serviceTtlKey } from './dns-values.js';
import { parseIpv4Range } from '../core/ipv4-range.js';
import { etcdEndpoint, etcdPrefix, STORES, type StoreKind } from './etcd-values.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Settings as the daemons take them: durations in ms, addresses as written (host[:port]). */
export interface AgentSettings {
  nodeName?: string;
  datacenter?: string;
  dataDir?: string;
  advertiseAddr?: string;
  /** `http_addr`, or `addresses.http` + `ports.http` (defaults 127.0.0.1 and 8500). */
  httpAddr?: string;
  retryJoin?: string[];
  enableScriptChecks?: boolean;
  /** `proxy_workers`: processes carrying the sidecars' traffic; 0 = in the agent's process. */
  proxyWorkers?: number;
  /** `data_plane_socket`: the unix socket of the data-plane supervisor (`trellis proxy`). */
  dataPlaneSocket?: string;
  nodeMeta?: Record<string, string>;
  logLevel?: LogLevel;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  syncIntervalMs?: number;
  bindAddr?: string;
  snapshotEvery?: number;
  /** `acl { enabled = false }`: the server ignores every token and allows everything. */
  aclEnabled?: boolean;
  /** `acl { default_policy = "deny" }`: servers decide tokens without a matching rule by it. */
  aclDefaultPolicy?: 'allow' | 'deny';
  /** `acl { tokens { agent = "..." } }`: the agent's own token. */
  aclAgentToken?: string;
  /** `metrics_addr`: where the agent serves Prometheus metrics at /metrics (unset: nowhere). */
  metricsAddr?: string;
  /** `dns_addr`: where the agent answers DNS for `.consul` names, UDP and TCP, or `off`. */
  dnsAddr?: string;
  /** `recursors`: DNS servers for names outside the domain, tried in order (ip[:port]). */
  recursors?: string[];
  /** `domain`: the DNS domain the agent answers for (Consul's default: `consul`). */
  domain?: string;
  /** `dns_config { node_ttl }`, ms. */
  dnsNodeTtlMs?: number;
  /** `dns_config { service_ttl }`: service name, `prefix*` or `*` -> TTL in ms. */
  dnsServiceTtlMs?: Record<string, number>;
  /** `dns_config { only_passing }`: leave out instances with warning checks too. */
  dnsOnlyPassing?: boolean;
  /** `dns_config { recursor_timeout }`, ms. */
  dnsRecursorTimeoutMs?: number;
  /** `dns_config { resolv_conf }`: where the host's DNS servers are read when `recursors` is unset. */
  dnsResolvConf?: string;
  /** `virtual_ip_range`: the IPv4 CIDR servers take mesh services' virtual IPs from. */
  virtualIpRange?: string;
  /** `limits { http_max_conns_per_client }`: open API connections per client address; 0 = no limit. */
  httpMaxConnsPerClient?: number;
  /** `limits { http_handshake_timeout }`, ms: time a new API connection has to send a request. */
  httpHandshakeTimeoutMs?: number;
  /** `store`: where a server keeps the catalog, `embedded` (default) or `etcd`. */
  store?: StoreKind;
  /** `etcd { endpoints }`: etcd client URLs. */
  etcdEndpoints?: string[];
  /** `etcd { prefix }`: the key prefix of this cluster's data (default /trellis). */
  etcdPrefix?: string;
  /** `etcd { ca_file, cert_file, key_file }`: PEM files for TLS to etcd. */
  etcdCaFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  /** `etcd { username }`: etcd user; the password comes from $TRELLIS_ETCD_PASSWORD. */
  etcdUsername?: string;
  /** `ca_encryption_key_file`: the key (32 bytes, base64) CA keys are encrypted with in etcd. */
  caEncryptionKeyFile?: string;
  /**
   * `ca_encryption_previous_key_files`: keys the CA keys may still be encrypted with (while the
   * encryption key is changed); each is re-encrypted with `ca_encryption_key_file` at start.
   */
  caEncryptionPreviousKeyFiles?: string[];
}

/** One setting as one file wrote it. */
export interface SettingEntry {
  /** Canonical path: `node_name`, `node_meta.rack`, `ports.http`. */
  name: string;
  /** For node_meta, addresses and ports: the member's key (`rack`). */
  member?: string;
  /** The key as written, for messages. */
  key: string;
  /** Comparable value: durations in ms, everything else as decoded. */
  value: unknown;
  /** The value as written (JSON), for messages. */
  shown: string;
  file: string;
  pos: Position;
}

const HOST = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-][A-Za-z0-9._-]*)`;
const HOST_PORT_RE = new RegExp(`^${HOST}(?::(\\d{1,5}))?$`);
const HOST_RE = new RegExp(`^${HOST}$`);

/** host[:port]; the port defaults to 8500 where the address is used. 0 = any free port. */
function hostPort(allowZero: boolean): Check<string> {
  return (v) => {
    const m = HOST_PORT_RE.exec(v);
    const p = m?.[1] === undefined ? undefined : Number(m[1]);
    if (m && (p === undefined || (p >= (allowZero ? 0 : 1) && p <= 65535))) return undefined;
    return `invalid address ${JSON.stringify(v)}: use host:port, such as "10.0.0.5:8500"`;
  };
}

const host: Check<string> = (v) =>
  HOST_RE.test(v)
    ? undefined
    : `invalid address ${JSON.stringify(v)}: use a host name or IP address without a port`;

const positive: Check<string> = (v) =>
  parseDuration(v) === 0 ? 'must be longer than 0s' : undefined;

const listenPort: Check<number> = (n) =>
  n < 0 || n > 65535
    ? `port ${n} is out of range: use 1-65535 (or 0 for any free port)`
    : undefined;

const vipRange: Check<string> = (v) => {
  try {
    parseIpv4Range(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

const nonEmptyList: Check<unknown[]> = (l) =>
  l.length === 0 ? 'must list at least one server address' : undefined;

/** Keys whose values are compared (and reported) per member rather than as a whole. */
const PER_MEMBER = new Set([
  'node_meta',
  'addresses',
  'ports',
  'acl',
  'dns_config',
  'limits',
  'etcd',
]);

const nonEmptyEndpoints: Check<unknown[]> = (l) =>
  l.length === 0 ? 'must list at least one etcd endpoint' : undefined;

const settingFields: readonly FieldSpec[] = [
  field('node_name', t.string(serviceIdent('node name'))),
  field('datacenter', t.string(serviceIdent('datacenter'))),
  field('data_dir', t.string(notEmpty('data_dir'))),
  field('advertise_addr', t.string(host)),
  field('http_addr', t.string(hostPort(true))),
  field('metrics_addr', t.string(hostPort(true))),
  // `off`: no DNS (the agent answers on 127.0.0.1:8600 unless told otherwise, as Consul's does).
  field(
    'dns_addr',
    t.string((v) => (v === 'off' ? undefined : hostPort(true)(v))),
  ),
  field('recursors', t.listOf(t.string(recursorAddress))),
  field('domain', t.string(dnsDomain)),
  field(
    'dns_config',
    t.object(
      schema([
        field('node_ttl', t.duration()),
        field('service_ttl', t.mapOf(t.duration(), serviceTtlKey)),
        field('only_passing', t.bool()),
        field('recursor_timeout', t.duration(positive)),
        field('resolv_conf', t.string(notEmpty('resolv_conf'))),
      ]),
    ),
  ),
  field('virtual_ip_range', t.string(vipRange)),
  field(
    'limits',
    t.object(
      schema([
        field('http_max_conns_per_client', t.int(atLeast(0))),
        field('http_handshake_timeout', t.duration()),
      ]),
    ),
  ),
  field('store', t.string(oneOf(STORES))),
  field(
    'etcd',
    t.object(
      schema([
        field('endpoints', t.listOf(t.string(etcdEndpoint), nonEmptyEndpoints)),
        field('prefix', t.string(etcdPrefix)),
        field('ca_file', t.string(notEmpty('ca_file'))),
        field('cert_file', t.string(notEmpty('cert_file'))),
        field('key_file', t.string(notEmpty('key_file'))),
        field('username', t.string(notEmpty('username'))),
      ]),
    ),
  ),
  field('ca_encryption_key_file', t.string(notEmpty('ca_encryption_key_file'))),
  field(
    'ca_encryption_previous_key_files',
    t.listOf(t.string(notEmpty('ca_encryption_previous_key_files')), nonEmptyList),
  ),
  field('addresses', t.object(schema([field('http', t.string(host))]))),
  field('ports', t.object(schema([field('http', t.int(listenPort))]))),
  field('retry_join', t.listOf(t.string(hostPort(false)), nonEmptyList), { aliases: ['servers'] }),
  field('enable_script_checks', t.bool()),
  field('proxy_workers', t.int(atLeast(0))),
  field('data_plane_socket', t.string(notEmpty('data_plane_socket'))),
  field('node_meta', t.mapOfString(metaValue, metaKey, META_MAX_PAIRS)),
  field('log_level', t.string(oneOf(LOG_LEVELS))),
  field('heartbeat_interval', t.duration(positive)),
  field('heartbeat_ttl', t.duration(positive)),
  field('sync_interval', t.duration(positive)),
  field('bind_addr', t.string(hostPort(true))),
  field('snapshot_every', t.int(atLeast(1))),
  field(
    'acl',
    t.object(
      schema([
        field('enabled', t.bool()),
        field('default_policy', t.string(oneOf(['allow', 'deny']))),
        field(
          'tokens',
          t.object(
            schema([
              field('agent', t.string(notEmpty('agent token'))),
              field('default', t.string()),
            ]),
          ),
        ),
      ]),
    ),
  ),
];

/** Every top-level key a config-dir file may hold: definitions and settings. */
export const configFileSchema = schema([...serviceDefinitionFields, ...settingFields]);

export interface LocatedConfigFile extends LocatedDefinitions {
  settings: SettingEntry[];
}

/** Decodes one parsed config-dir file; a file with errors contributes no settings either. */
export function decodeConfigFileAt(root: ValueNode | undefined, file: string): LocatedConfigFile {
  const result = decode<Record<string, unknown>>(root, configFileSchema, { file });
  const defs = locateDefinitions(result, file);
  if (result.errors.length > 0 || root?.kind !== 'object') return { ...defs, settings: [] };
  return { ...defs, settings: settingEntries(root.entries, result.value, file) };
}

function settingEntries(
  entries: readonly Entry[],
  value: Record<string, unknown>,
  file: string,
): SettingEntry[] {
  const byKey = new Map<string, FieldSpec>();
  for (const f of settingFields)
    for (const n of [f.name, ...(f.aliases ?? [])]) byKey.set(normalizeKey(n), f);
  const out: SettingEntry[] = [];
  for (const e of entries) {
    const f = byKey.get(normalizeKey(e.key));
    const v = f ? value[f.name] : undefined;
    if (!f || v === undefined) continue;
    if (!PER_MEMBER.has(f.name)) {
      out.push(entry(f.name, e.key, v, f.type, file, e.keyPos));
      continue;
    }
    // Members of node_meta (and addresses/ports) merge across files key by key.
    const members = e.value.kind === 'object' ? e.value.entries : [];
    for (const [k, mv] of Object.entries(v as Record<string, unknown>)) {
      // Meta keys are the user's own and case-sensitive; addresses/ports keys are schema keys.
      const m =
        members.find((x) => x.key === k) ??
        (f.name === 'node_meta'
          ? undefined
          : members.find((x) => normalizeKey(x.key) === normalizeKey(k)));
      const member = f.name === 'node_meta' ? k : normalizeKey(k);
      const key = joinPath(e.key, m?.key ?? k);
      const type =
        f.type.kind === 'object'
          ? f.type.schema.fields.find((x) => normalizeKey(x.name) === member)?.type
          : undefined;
      out.push({
        ...entry(joinPath(f.name, member), key, mv, type, file, m?.keyPos ?? e.keyPos),
        member,
      });
    }
  }
  return out;
}

function entry(
  name: string,
  key: string,
  v: unknown,
  type: FieldType | undefined,
  file: string,
  pos: Position,
): SettingEntry {
  const value = type?.kind === 'duration' ? parseDuration(v as string) : v;
  return { name, key, value, shown: JSON.stringify(v), file, pos };
}

function where(e: SettingEntry): string {
  return `${e.file}:${e.pos.line}:${e.pos.column}`;
}

function diagnostic(e: SettingEntry, message: string): ConfigDiagnostic {
  return { file: e.file, line: e.pos.line, column: e.pos.column, key: e.key, message };
}

export interface MergedSettings {
  settings: AgentSettings;
  errors: ConfigDiagnostic[];
}

/** Combines the settings of files given in name order; the first place a key is set wins. */
export function mergeSettings(files: readonly (readonly SettingEntry[])[]): MergedSettings {
  const first = new Map<string, SettingEntry>();
  const errors: ConfigDiagnostic[] = [];
  for (const e of files.flat()) {
    const seen = first.get(e.name);
    if (!seen) first.set(e.name, e);
    else if (JSON.stringify(seen.value) !== JSON.stringify(e.value))
      errors.push(diagnostic(e, `already set to ${seen.shown} at ${where(seen)}`));
  }
  const httpAddr = first.get('http_addr');
  for (const part of ['addresses.http', 'ports.http']) {
    const e = first.get(part);
    if (httpAddr && e)
      errors.push(
        diagnostic(e, `conflicts with http_addr set at ${where(httpAddr)}: use one or the other`),
      );
  }
  if (errors.length === 0) return { settings: toSettings(first), errors };
  // As with definitions, a file with an error contributes nothing.
  const bad = new Set(errors.map((e) => e.file));
  const clean = new Map<string, SettingEntry>();
  for (const e of files.flat()) if (!bad.has(e.file) && !clean.has(e.name)) clean.set(e.name, e);
  return { settings: toSettings(clean), errors };
}

function toSettings(m: ReadonlyMap<string, SettingEntry>): AgentSettings {
  const get = <T>(name: string): T | undefined => m.get(name)?.value as T | undefined;
  const s: AgentSettings = {};
  const set = <K extends keyof AgentSettings>(k: K, v: AgentSettings[K] | undefined): void => {
    if (v !== undefined) s[k] = v;
  };
  set('nodeName', get('node_name'));
  set('datacenter', get('datacenter'));
  set('dataDir', get('data_dir'));
  set('advertiseAddr', get('advertise_addr'));
  const addr = get<string>('addresses.http');
  const port = get<number>('ports.http');
  set(
    'httpAddr',
    get('http_addr') ??
      (addr !== undefined || port !== undefined
        ? joinHostPort(addr ?? '127.0.0.1', port ?? 8500)
        : undefined),
  );
  set('retryJoin', get('retry_join'));
  set('enableScriptChecks', get('enable_script_checks'));
  set('proxyWorkers', get('proxy_workers'));
  set('dataPlaneSocket', get('data_plane_socket'));
  set('nodeMeta', nodeMeta(m));
  set('logLevel', get('log_level'));
  set('heartbeatIntervalMs', get('heartbeat_interval'));
  set('heartbeatTtlMs', get('heartbeat_ttl'));
  set('syncIntervalMs', get('sync_interval'));
  set('bindAddr', get('bind_addr'));
  set('snapshotEvery', get('snapshot_every'));
  set('aclEnabled', get('acl.enabled'));
  set('aclDefaultPolicy', get('acl.defaultpolicy'));
  set('aclAgentToken', get<{ agent?: string }>('acl.tokens')?.agent);
  set('metricsAddr', get('metrics_addr'));
  set('dnsAddr', get('dns_addr'));
  set('recursors', get('recursors'));
  set('domain', get('domain'));
  set('dnsNodeTtlMs', get('dns_config.nodettl'));
  const serviceTtl = get<Record<string, string>>('dns_config.servicettl');
  set(
    'dnsServiceTtlMs',
    serviceTtl &&
      Object.fromEntries(Object.entries(serviceTtl).map(([k, v]) => [k, parseDuration(v) ?? 0])),
  );
  set('dnsOnlyPassing', get('dns_config.onlypassing'));
  set('dnsRecursorTimeoutMs', get('dns_config.recursortimeout'));
  set('dnsResolvConf', get('dns_config.resolvconf'));
  set('virtualIpRange', get('virtual_ip_range'));
  set('httpMaxConnsPerClient', get('limits.httpmaxconnsperclient'));
  set('httpHandshakeTimeoutMs', get('limits.httphandshaketimeout'));
  set('store', get('store'));
  set('etcdEndpoints', get('etcd.endpoints'));
  set('etcdPrefix', get('etcd.prefix'));
  set('etcdCaFile', get('etcd.cafile'));
  set('etcdCertFile', get('etcd.certfile'));
  set('etcdKeyFile', get('etcd.keyfile'));
  set('etcdUsername', get('etcd.username'));
  set('caEncryptionKeyFile', get('ca_encryption_key_file'));
  set('caEncryptionPreviousKeyFiles', get('ca_encryption_previous_key_files'));
  return s;
}

function nodeMeta(m: ReadonlyMap<string, SettingEntry>): Record<string, string> | undefined {
  const meta = [...m.values()].filter(
    (e) => e.member !== undefined && e.name.startsWith('node_meta'),
  );
  if (meta.length === 0) return undefined;
  return Object.fromEntries(meta.map((e) => [e.member!, e.value as string]));
}

function joinHostPort(h: string, p: number): string {
  return `${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${p}`;
}
