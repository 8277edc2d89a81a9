/**
 * Turns request bodies into complete, validated wire objects: checks types field by field
 * (errors name the field), fills Consul's defaults (ID = Name, Weights 1/1, empty Tags/Meta) and
 * accepts Consul's case-insensitive and snake_case spellings of keys. Pure; shared by the catalog
 * (catalog/register) and the agent (agent/service/register).
 */
import { badRequest } from '../core/errors.js';
import { closest, normalizeKey } from '../core/suggest.js';
import { parseDuration } from '../core/duration.js';
import {
  controlCharProblem,
  metaKeyProblem,
  metaPairsProblem,
  metaValueProblem,
  quoteKey,
} from './text-rules.js';
import type {
  AgentService,
  CheckType,
  ConnectProxyConfig,
  HealthStatus,
  ServiceAddress,
  ServiceConnect,
  ServiceRegistration,
  TransparentProxyConfig,
  Upstream,
} from './types.js';

type Obj = Record<string, unknown>;

/** A name usable as a DNS label and a SPIFFE path segment. */
export const NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_])?$/;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Fields Consul's clients may send that Trellis accepts and ignores (enterprise tenancy, request
 * metadata, read-only fields echoed back). Anything else unknown is a 400, so a typo is caught.
 */
const IGNORED_FIELDS = new Set(
  [
    'Namespace',
    'Partition',
    'PeerName',
    'Locality',
    'CreateIndex',
    'ModifyIndex',
    'ContentHash',
    'Token',
    'WriteRequest',
    'SocketPath',
    'DockerContainerID',
    'Shell',
    'UDP',
    'H2PING',
    'H2PingUseTLS',
    'OSService',
    'AliasNode',
    'AliasService',
    'TCPUseTLS',
    'ExposedPort',
    'ServiceName',
    'ServiceTags',
    'Datacenter',
    'EnterpriseMeta',
    'Expose',
    'MeshGateway',
    'AccessLogs',
    'LocalServiceSocketPath',
    'DestinationPartition',
    'DestinationPeer',
    'LocalBindSocketMode',
    'CentrallyConfigured',
    'IntervalDuration',
    'TimeoutDuration',
    'DeregisterCriticalServiceAfterDuration',
  ].map((f) => normalizeKey(f)),
);

/**
 * Re-keys `o` to the canonical spellings in `fields` (matching case-insensitively, ignoring
 * underscores, as Consul decodes). A key that is neither known nor a Consul field Trellis
 * ignores is refused with a "did you mean" hint.
 */
export function canonicalize(o: Obj, fields: readonly string[], path = ''): Obj {
  const map = new Map(fields.map((f) => [normalizeKey(f), f]));
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const canonical = map.get(normalizeKey(k));
    if (canonical) {
      out[canonical] = v;
    } else if (!IGNORED_FIELDS.has(normalizeKey(k))) {
      const hint = closest(k, fields);
      throw badRequest(
        `${path}${k}: unknown field${hint ? `; did you mean "${hint}"?` : ''}`,
        path + k,
      );
    }
  }
  return out;
}

export function str(o: Obj, k: string, path: string, def = ''): string {
  const v = o[k];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'string') throw badRequest(`${path}${k}: must be a string`, path + k);
  return v;
}

export function optStr(o: Obj, k: string, path: string): string | undefined {
  return o[k] === undefined || o[k] === null ? undefined : str(o, k, path);
}

export function int(
  o: Obj,
  k: string,
  path: string,
  def = 0,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  let v = o[k];
  if (v === undefined || v === null) return def;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw badRequest(`${path}${k}: must be an integer`, path + k);
  if (v < min || v > max)
    throw badRequest(`${path}${k}: must be between ${min} and ${max}`, path + k);
  return v;
}

export function bool(o: Obj, k: string, path: string, def = false): boolean {
  const v = o[k];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') throw badRequest(`${path}${k}: must be true or false`, path + k);
  return v;
}

export function strList(o: Obj, k: string, path: string): string[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw badRequest(`${path}${k}: must be a list of strings`, path + k);
  }
  return v as string[];
}

export function strMap(
  o: Obj,
  k: string,
  path: string,
  maxKey = 128,
  maxValue = 512,
): Record<string, string> {
  const v = o[k];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw badRequest(`${path}${k}: must be an object of strings`, path + k);
  const out: Record<string, string> = {};
  for (const [mk, mv] of Object.entries(v)) {
    if (typeof mv !== 'string')
      throw badRequest(`${path}${k}.${mk}: must be a string`, `${path}${k}.${mk}`);
    if (mk.length === 0 || mk.length > maxKey)
      throw badRequest(
        `${path}${k}: key "${mk.slice(0, 40)}" must be 1 to ${maxKey} characters`,
        path + k,
      );
    if (mv.length > maxValue)
      throw badRequest(
        `${path}${k}.${mk}: value longer than ${maxValue} characters`,
        `${path}${k}.${mk}`,
      );
    out[mk] = mv;
  }
  return out;
}

/**
 * Service or node metadata, by Consul's rules: keys of letters, digits, "_" and "-" (at most
 * 128), values at most 512 bytes, at most 64 pairs, no control characters anywhere.
 */
export function metaMap(o: Obj, k: string, path: string): Record<string, string> {
  const v = o[k];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw badRequest(`${path}${k}: must be an object of strings`, path + k);
  const entries = Object.entries(v);
  const many = metaPairsProblem(entries.length);
  if (many) throw badRequest(`${path}${k}: ${many}`, path + k);
  const out: Record<string, string> = {};
  for (const [mk, mv] of entries) {
    const keyProblem = metaKeyProblem(mk);
    if (keyProblem) throw badRequest(`${path}${k}: key ${quoteKey(mk)}: ${keyProblem}`, path + k);
    if (typeof mv !== 'string')
      throw badRequest(`${path}${k}.${mk}: must be a string`, `${path}${k}.${mk}`);
    const valueProblem = metaValueProblem(mv);
    if (valueProblem) throw badRequest(`${path}${k}.${mk}: ${valueProblem}`, `${path}${k}.${mk}`);
    out[mk] = mv;
  }
  return out;
}

/** A string field that may not hold control characters (addresses, check names, ids). */
export function textField(o: Obj, k: string, path: string, def = ''): string {
  const v = str(o, k, path, def);
  const problem = controlCharProblem(v);
  if (problem) throw badRequest(`${path}${k}: ${problem}`, path + k);
  return v;
}

/** A list of tags: strings without control characters. */
export function tagList(o: Obj, k: string, path: string): string[] {
  const tags = strList(o, k, path);
  tags.forEach((tag, i) => {
    const problem = controlCharProblem(tag);
    if (problem) throw badRequest(`${path}${k}[${i}]: tag ${problem}`, `${path}${k}[${i}]`);
  });
  return tags;
}

export function name(o: Obj, k: string, path: string, required: boolean): string {
  const v = str(o, k, path);
  if (v === '') {
    if (required) throw badRequest(`${path}${k}: missing (required)`, path + k);
    return v;
  }
  if (!NAME_RE.test(v)) {
    throw badRequest(
      `${path}${k}: "${v.slice(0, 64)}" is not a valid name (letters, digits, '.', '_', '-'; it must start with a letter or digit, at most 128 characters)`,
      path + k,
    );
  }
  return v;
}

export function duration(o: Obj, k: string, path: string): string | undefined {
  const v = optStr(o, k, path);
  if (v === undefined || v === '') return undefined;
  if (parseDuration(v) === undefined)
    throw badRequest(`${path}${k}: "${v}" is not a duration (e.g. "10s", "1m30s")`, path + k);
  return v;
}

export function status(o: Obj, k: string, path: string): HealthStatus | undefined {
  const v = optStr(o, k, path);
  if (v === undefined || v === '') return undefined;
  if (v !== 'passing' && v !== 'warning' && v !== 'critical') {
    throw badRequest(`${path}${k}: must be passing, warning or critical`, path + k);
  }
  return v;
}

const CHECK_FIELDS = [
  'CheckID',
  'ID',
  'Name',
  'Notes',
  'ScriptArgs',
  'Args',
  'Interval',
  'Timeout',
  'TTL',
  'HTTP',
  'Header',
  'Method',
  'Body',
  'DisableRedirects',
  'TCP',
  'GRPC',
  'GRPCUseTLS',
  'TLSServerName',
  'TLSSkipVerify',
  'OutputMaxSize',
  'Status',
  'SuccessBeforePassing',
  'FailuresBeforeWarning',
  'FailuresBeforeCritical',
  'DeregisterCriticalServiceAfter',
  'ServiceID',
  'Output',
] as const;

/** Validates a check as an agent runs it (Consul's CheckType). */
export function normalizeCheckType(
  raw: unknown,
  path: string,
): CheckType & { ID?: string; ServiceID?: string } {
  if (!isObject(raw)) throw badRequest(`${path}: must be an object`, path);
  const o = canonicalize(raw, CHECK_FIELDS, `${path}.`);
  const p = `${path}.`;
  const c: CheckType & { ID?: string; ServiceID?: string } = {};
  const idKey = o.CheckID !== undefined && o.CheckID !== null ? 'CheckID' : 'ID';
  const id = o[idKey] === undefined || o[idKey] === null ? undefined : textField(o, idKey, p);
  if (id !== undefined && id !== '') c.CheckID = id;
  const nm = o.Name === undefined || o.Name === null ? undefined : textField(o, 'Name', p);
  if (nm) c.Name = nm;
  const notes = optStr(o, 'Notes', p);
  if (notes) c.Notes = notes;
  const args = o.ScriptArgs !== undefined ? strList(o, 'ScriptArgs', p) : strList(o, 'Args', p);
  if (args.length) c.ScriptArgs = args;
  for (const k of ['Interval', 'Timeout', 'TTL', 'DeregisterCriticalServiceAfter'] as const) {
    const d = duration(o, k, p);
    if (d !== undefined) c[k] = d;
  }
  for (const k of ['HTTP', 'Method', 'Body', 'TCP', 'GRPC', 'TLSServerName'] as const) {
    const v = optStr(o, k, p);
    if (v) c[k] = v;
  }
  for (const k of ['DisableRedirects', 'GRPCUseTLS', 'TLSSkipVerify'] as const) {
    if (o[k] !== undefined) c[k] = bool(o, k, p);
  }
  for (const k of [
    'OutputMaxSize',
    'SuccessBeforePassing',
    'FailuresBeforeWarning',
    'FailuresBeforeCritical',
  ] as const) {
    if (o[k] !== undefined) c[k] = int(o, k, p);
  }
  if (o.Header !== undefined && o.Header !== null) {
    if (!isObject(o.Header))
      throw badRequest(`${p}Header: must be an object of string lists`, `${p}Header`);
    const h: Record<string, string[]> = {};
    for (const hk of Object.keys(o.Header)) h[hk] = strList(o.Header, hk, `${p}Header.`);
    c.Header = h;
  }
  const st = status(o, 'Status', p);
  if (st) c.Status = st;
  const sid = optStr(o, 'ServiceID', p);
  if (sid) c.ServiceID = sid;
  const kinds = [c.ScriptArgs, c.HTTP, c.TCP, c.GRPC, c.TTL].filter((x) => x !== undefined).length;
  if (kinds > 1)
    throw badRequest(
      `${path}: a check has exactly one of ScriptArgs, HTTP, TCP, GRPC or TTL`,
      path,
    );
  if (kinds === 1 && !c.TTL && !c.Interval)
    throw badRequest(
      `${path}.Interval: required for a ${c.HTTP ? 'HTTP' : c.TCP ? 'TCP' : c.GRPC ? 'gRPC' : 'script'} check`,
      `${path}.Interval`,
    );
  return c;
}

const UPSTREAM_FIELDS = [
  'DestinationType',
  'DestinationNamespace',
  'DestinationName',
  'Datacenter',
  'LocalBindAddress',
  'LocalBindPort',
  'LocalBindSocketPath',
  'Config',
] as const;

function normalizeUpstream(raw: unknown, path: string): Upstream {
  if (!isObject(raw)) throw badRequest(`${path}: must be an object`, path);
  const o = canonicalize(raw, UPSTREAM_FIELDS, `${path}.`);
  const p = `${path}.`;
  const u: Upstream = { DestinationName: name(o, 'DestinationName', p, true) };
  const t = optStr(o, 'DestinationType', p);
  if (t) u.DestinationType = t;
  const dc = optStr(o, 'Datacenter', p);
  if (dc) u.Datacenter = dc;
  const addr = optStr(o, 'LocalBindAddress', p);
  if (addr) u.LocalBindAddress = addr;
  if (o.LocalBindPort !== undefined) u.LocalBindPort = int(o, 'LocalBindPort', p, 0, 0, 65535);
  if (isObject(o.Config)) u.Config = o.Config;
  return u;
}

const PROXY_FIELDS = [
  'DestinationServiceName',
  'DestinationServiceID',
  'LocalServiceAddress',
  'LocalServicePort',
  'Mode',
  'TransparentProxy',
  'Config',
  'Upstreams',
] as const;

export function normalizeProxy(
  raw: unknown,
  path: string,
  requireDestination: boolean,
): ConnectProxyConfig {
  if (!isObject(raw)) throw badRequest(`${path}: must be an object`, path);
  const o = canonicalize(raw, PROXY_FIELDS, `${path}.`);
  const p = `${path}.`;
  const px: ConnectProxyConfig = {
    DestinationServiceName: name(o, 'DestinationServiceName', p, requireDestination),
  };
  const did = optStr(o, 'DestinationServiceID', p);
  if (did) px.DestinationServiceID = did;
  const la = optStr(o, 'LocalServiceAddress', p);
  if (la) px.LocalServiceAddress = la;
  if (o.LocalServicePort !== undefined)
    px.LocalServicePort = int(o, 'LocalServicePort', p, 0, 0, 65535);
  const mode = optStr(o, 'Mode', p);
  if (mode) {
    if (!['direct', 'transparent'].includes(mode))
      throw badRequest(`${p}Mode: must be "direct" or "transparent"`, `${p}Mode`);
    px.Mode = mode;
  }
  if (isObject(o.TransparentProxy))
    px.TransparentProxy = normalizeTransparentProxy(o.TransparentProxy, `${p}TransparentProxy.`);
  if (o.Config !== undefined && o.Config !== null) {
    if (!isObject(o.Config)) throw badRequest(`${p}Config: must be an object`, `${p}Config`);
    px.Config = o.Config;
  }
  if (o.Upstreams !== undefined && o.Upstreams !== null) {
    if (!Array.isArray(o.Upstreams))
      throw badRequest(`${p}Upstreams: must be a list`, `${p}Upstreams`);
    px.Upstreams = o.Upstreams.map((u, i) => normalizeUpstream(u, `${p}Upstreams[${i}]`));
  }
  return px;
}

const TPROXY_FIELDS = [
  'OutboundListenerPort',
  'DialedDirectly',
  'CaptureUser',
  'CaptureCgroup',
  'ExcludeInboundPorts',
  'ExcludeOutboundPorts',
  'ExcludeOutboundCIDRs',
  'ExcludeUIDs',
  'RedirectDNS',
] as const;

/** A unix user name (as useradd allows) or a numeric uid. */
const USER_RE = /^(?:\d{1,10}|[a-z_][a-z0-9_.-]{0,31}\$?)$/;

/** A cgroup v2 path below /sys/fs/cgroup: safe characters, no `.` or `..` segments. */
export const CGROUP_RE = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.@:-]+(?:\/[A-Za-z0-9_.@:-]+)*$/;

function intList(o: Obj, k: string, p: string, min: number, max: number): number[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badRequest(`${p}${k}: must be a list of integers`, p + k);
  return v.map((_, i) => int(v as unknown as Obj, String(i), `${p}${k}[`, 0, min, max));
}

/** 4 or 6 for an IP address literal, 0 otherwise (api is pure: no node:net). */
function ipFamily(a: string): 0 | 4 | 6 {
  if (/^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(a))
    return 4;
  if (!/^[0-9a-fA-F:]+$/.test(a) || a.split('::').length > 2) return 0;
  const groups = a.split(':').filter((g) => g !== '');
  if (groups.some((g) => g.length > 4)) return 0;
  return a.includes('::') ? (groups.length < 8 ? 6 : 0) : groups.length === 8 ? 6 : 0;
}

function cidr(v: string): boolean {
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const fam = ipFamily(addr);
  if (fam === 0) return false;
  if (slash < 0) return true;
  const bits = v.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (fam === 4 ? 32 : 128);
}

function normalizeTransparentProxy(raw: Obj, p: string): TransparentProxyConfig {
  const tp = canonicalize(raw, TPROXY_FIELDS, p);
  const out: TransparentProxyConfig = {
    OutboundListenerPort: int(tp, 'OutboundListenerPort', p, 0, 0, 65535),
    DialedDirectly: bool(tp, 'DialedDirectly', p),
  };
  const user = optStr(tp, 'CaptureUser', p);
  if (user) {
    if (!USER_RE.test(user))
      throw badRequest(`${p}CaptureUser: "${user}" is not a user name or uid`, `${p}CaptureUser`);
    out.CaptureUser = user;
  }
  const cg = optStr(tp, 'CaptureCgroup', p);
  if (cg) {
    const path = cg.replace(/^\/+/, '');
    if (!CGROUP_RE.test(path))
      throw badRequest(
        `${p}CaptureCgroup: "${cg}" is not a cgroup path (like "system.slice/web.service")`,
        `${p}CaptureCgroup`,
      );
    if (user)
      throw badRequest(
        `${p}CaptureCgroup: set either CaptureUser or CaptureCgroup, not both`,
        `${p}CaptureCgroup`,
      );
    out.CaptureCgroup = path;
  }
  const inPorts = intList(tp, 'ExcludeInboundPorts', p, 1, 65535);
  if (inPorts?.length) out.ExcludeInboundPorts = inPorts;
  const outPorts = intList(tp, 'ExcludeOutboundPorts', p, 1, 65535);
  if (outPorts?.length) out.ExcludeOutboundPorts = outPorts;
  const cidrs = strList(tp, 'ExcludeOutboundCIDRs', p);
  cidrs.forEach((c, i) => {
    if (!cidr(c))
      throw badRequest(
        `${p}ExcludeOutboundCIDRs[${i}]: "${c}" is not a CIDR (address/prefix)`,
        `${p}ExcludeOutboundCIDRs`,
      );
  });
  if (cidrs.length) out.ExcludeOutboundCIDRs = cidrs;
  const uids = intList(tp, 'ExcludeUIDs', p, 0, 0xffffffff);
  if (uids?.length) out.ExcludeUIDs = uids;
  if (bool(tp, 'RedirectDNS', p)) out.RedirectDNS = true;
  return out;
}

const SERVICE_FIELDS = [
  'Kind',
  'ID',
  'Name',
  'Service',
  'Tags',
  'Port',
  'Address',
  'TaggedAddresses',
  'EnableTagOverride',
  'Meta',
  'Weights',
  'Check',
  'Checks',
  'Proxy',
  'Connect',
] as const;

function taggedAddresses(o: Obj, p: string): Record<string, ServiceAddress> | undefined {
  const v = o.TaggedAddresses;
  if (v === undefined || v === null) return undefined;
  if (!isObject(v))
    throw badRequest(`${p}TaggedAddresses: must be an object`, `${p}TaggedAddresses`);
  const out: Record<string, ServiceAddress> = {};
  for (const [k, a] of Object.entries(v)) {
    if (!isObject(a))
      throw badRequest(
        `${p}TaggedAddresses.${k}: must be {Address, Port}`,
        `${p}TaggedAddresses.${k}`,
      );
    const ca = canonicalize(a, ['Address', 'Port'], `${p}TaggedAddresses.${k}.`);
    out[k] = {
      Address: textField(ca, 'Address', `${p}TaggedAddresses.${k}.`),
      Port: int(ca, 'Port', `${p}TaggedAddresses.${k}.`, 0, 0, 65535),
    };
  }
  return out;
}

/**
 * Validates an agent service registration; the name is read from "Name" (agent bodies) or
 * "Service" (the Service object of a catalog registration).
 */
export function normalizeServiceRegistration(raw: unknown, path = ''): ServiceRegistration {
  return normalizeService(raw, path, false);
}

/**
 * A `sidecar` is the `Connect.SidecarService` block: a connect-proxy whose Kind, destination
 * and ID the agent fills in (agent/local/sidecar.ts), so it need not name them and may not set
 * its ID or nest another sidecar (Consul's NodeService.Validate).
 */
function normalizeService(raw: unknown, path: string, sidecar: boolean): ServiceRegistration {
  if (!isObject(raw)) throw badRequest(`${path || 'body'}: must be a JSON object`, path || 'body');
  const o = canonicalize(raw, SERVICE_FIELDS, path ? `${path}.` : '');
  const p = path ? `${path}.` : '';
  const r: ServiceRegistration = {
    Name: name(o, o.Name !== undefined ? 'Name' : 'Service', p, true),
  };
  const kind = optStr(o, 'Kind', p);
  if (kind) {
    if (
      ![
        'connect-proxy',
        'mesh-gateway',
        'terminating-gateway',
        'ingress-gateway',
        'api-gateway',
      ].includes(kind)
    ) {
      throw badRequest(`${p}Kind: unknown service kind "${kind}"`, `${p}Kind`);
    }
    if (sidecar && kind !== 'connect-proxy')
      throw badRequest(`${p}Kind: a sidecar service is always a "connect-proxy"`, `${p}Kind`);
    r.Kind = kind;
  }
  const id = name(o, 'ID', p, false);
  if (id && sidecar)
    throw badRequest(
      `${p}ID: a sidecar service cannot set its ID: the agent names it "<service ID>-sidecar-proxy"`,
      `${p}ID`,
    );
  if (id) r.ID = id;
  r.Tags = tagList(o, 'Tags', p);
  r.Port = int(o, 'Port', p, 0, 0, 65535);
  r.Address = textField(o, 'Address', p);
  const ta = taggedAddresses(o, p);
  if (ta) r.TaggedAddresses = ta;
  r.EnableTagOverride = bool(o, 'EnableTagOverride', p);
  r.Meta = metaMap(o, 'Meta', p);
  if (o.Weights !== undefined && o.Weights !== null) {
    if (!isObject(o.Weights))
      throw badRequest(`${p}Weights: must be {Passing, Warning}`, `${p}Weights`);
    const w = canonicalize(o.Weights, ['Passing', 'Warning'], `${p}Weights.`);
    r.Weights = {
      Passing: int(w, 'Passing', `${p}Weights.`, 1, 1),
      Warning: int(w, 'Warning', `${p}Weights.`, 1, 0),
    };
  }
  if (o.Check !== undefined && o.Check !== null) r.Check = normalizeCheckType(o.Check, `${p}Check`);
  if (o.Checks !== undefined && o.Checks !== null) {
    if (!Array.isArray(o.Checks)) throw badRequest(`${p}Checks: must be a list`, `${p}Checks`);
    r.Checks = o.Checks.map((c, i) => normalizeCheckType(c, `${p}Checks[${i}]`));
  }
  // A sidecar's destination is filled in by the agent; any other proxy must name it.
  const needsProxy = kind === 'connect-proxy' && !sidecar;
  if (o.Proxy !== undefined && o.Proxy !== null)
    r.Proxy = normalizeProxy(o.Proxy, `${p}Proxy`, needsProxy);
  if (needsProxy && !r.Proxy)
    throw badRequest(`${p}Proxy: required for a connect-proxy`, `${p}Proxy`);
  if (o.Connect !== undefined && o.Connect !== null) {
    if (!isObject(o.Connect)) throw badRequest(`${p}Connect: must be an object`, `${p}Connect`);
    const c = canonicalize(o.Connect, ['Native', 'SidecarService'], `${p}Connect.`);
    const conn: ServiceConnect = {};
    if (c.Native !== undefined) conn.Native = bool(c, 'Native', `${p}Connect.`);
    if (c.SidecarService !== undefined && c.SidecarService !== null) {
      if (sidecar)
        throw badRequest(
          `${p}Connect.SidecarService: a sidecar service cannot have a sidecar of its own`,
          `${p}Connect.SidecarService`,
        );
      const side = isObject(c.SidecarService)
        ? { Name: `${r.Name}-sidecar-proxy`, ...c.SidecarService }
        : c.SidecarService;
      conn.SidecarService = normalizeService(side, `${p}Connect.SidecarService`, true);
    }
    if (sidecar && conn.Native)
      throw badRequest(
        `${p}Connect.Native: a proxy cannot also be Connect native`,
        `${p}Connect.Native`,
      );
    r.Connect = conn;
  }
  return r;
}

/** The stored form of a registered instance: every field present, Consul's defaults filled. */
export function toAgentService(
  r: ServiceRegistration,
): Omit<AgentService, 'CreateIndex' | 'ModifyIndex'> {
  const s: Omit<AgentService, 'CreateIndex' | 'ModifyIndex'> = {
    ID: r.ID || r.Name,
    Service: r.Name,
    Tags: r.Tags ?? [],
    Meta: r.Meta ?? {},
    Port: r.Port ?? 0,
    Address: r.Address ?? '',
    Weights: r.Weights ?? { Passing: 1, Warning: 1 },
    EnableTagOverride: r.EnableTagOverride ?? false,
  };
  if (r.Kind) s.Kind = r.Kind;
  if (r.TaggedAddresses) s.TaggedAddresses = r.TaggedAddresses;
  if (r.Proxy) s.Proxy = r.Proxy;
  // The SidecarService block is registration sugar (the agent registers the sidecar as a
  // service of its own): never stored, but a service that had one keeps its `Connect: {}`.
  if (r.Connect) s.Connect = r.Connect.Native ? { Native: true } : {};
  return s;
}
