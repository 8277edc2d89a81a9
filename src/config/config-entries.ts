/**
 * Consul config entries (`PUT /v1/config`, `consul config write`): the six kinds a mesh without
 * gateways needs, normalized to Consul's CamelCase wire shape and validated field by field.
 * Pure: no I/O. It lives in config because it needs both the api's filter language (resolver
 * subsets) and policy's intention rules, and only config may import both.
 *
 * Input is decoded as Consul's decoder does: keys match case-insensitively and ignoring
 * underscores (`connect_timeout` = `ConnectTimeout`), null means unset, a single value stands for
 * a one-element list, numbers and booleans may arrive as strings. Unknown keys are refused with a
 * "did you mean"; Consul fields Trellis cannot honour are refused by name rather than ignored,
 * since ignoring them would silently change what traffic does. Every error is a 400 MeshError
 * whose `field` is the path of the offending field (`Splits[1].Weight`, `Subsets["v1"].Filter`).
 *
 * validateConfigGraph / validateConfigDelete make the checks that span entries (protocols, subset
 * references) against the entries as they would be stored.
 */
import { parseDuration } from '../core/duration.js';
import { badRequest, isMeshError, type MeshError } from '../core/errors.js';
import { compileRegex } from '../core/re2.js';
import { closest, normalizeKey } from '../core/suggest.js';
import { compileFilter } from '../api/filter.js';
import { isObject, NAME_RE } from '../api/normalize.js';
import {
  validateRule,
  type Action,
  type HeaderMatch,
  type HttpMatch,
  type Permission,
} from '../policy/intentions.js';

// ---------------------------------------------------------------------------------------------
// Wire types. Declared as type aliases (not interfaces) so every entry is also assignable to the
// api's open `ConfigEntry` shape ({Kind, Name, [key]: unknown}) that the client sends.

export const CONFIG_ENTRY_KINDS = [
  'service-defaults',
  'proxy-defaults',
  'service-router',
  'service-splitter',
  'service-resolver',
  'service-intentions',
] as const;

export type ConfigEntryKind = (typeof CONFIG_ENTRY_KINDS)[number];

export const PROTOCOLS = ['tcp', 'http', 'http2', 'grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export type ProxyMode = 'direct' | 'transparent';
export type MutualTLSMode = 'strict' | 'permissive';
export type MeshGatewayMode = 'none' | 'local' | 'remote';

/** Fields every entry has; the indexes are set by the store, never taken from input. */
export type ConfigEntryHeader<K extends ConfigEntryKind> = {
  Kind: K;
  Name: string;
  Meta?: Record<string, string>;
  CreateIndex?: number;
  ModifyIndex?: number;
};

export type TransparentProxyConfig = { OutboundListenerPort?: number; DialedDirectly?: boolean };
export type MeshGatewayConfig = { Mode?: MeshGatewayMode };
export type ExposePath = {
  Path: string;
  LocalPathPort?: number;
  ListenerPort?: number;
  Protocol?: 'http' | 'http2';
};
export type ExposeConfig = { Checks?: boolean; Paths?: ExposePath[] };

export type UpstreamLimits = {
  MaxConnections?: number;
  MaxPendingRequests?: number;
  MaxConcurrentRequests?: number;
};
export type PassiveHealthCheck = {
  Interval?: string;
  MaxFailures?: number;
  EnforcingConsecutive5xx?: number;
  MaxEjectionPercent?: number;
  BaseEjectionTime?: string;
};
/** Settings for a service's upstreams: Defaults for all, or an Override for one (by Name). */
export type UpstreamSettings = {
  Name?: string;
  Protocol?: Protocol;
  ConnectTimeoutMs?: number;
  Limits?: UpstreamLimits;
  PassiveHealthCheck?: PassiveHealthCheck;
  MeshGateway?: MeshGatewayConfig;
  BalanceOutboundConnections?: 'exact_balance';
};
export type UpstreamConfiguration = {
  Defaults?: UpstreamSettings;
  Overrides?: (UpstreamSettings & { Name: string })[];
};

export type ServiceDefaultsEntry = ConfigEntryHeader<'service-defaults'> & {
  Protocol?: Protocol;
  Mode?: ProxyMode;
  TransparentProxy?: TransparentProxyConfig;
  MutualTLSMode?: MutualTLSMode;
  MeshGateway?: MeshGatewayConfig;
  Expose?: ExposeConfig;
  UpstreamConfig?: UpstreamConfiguration;
  MaxInboundConnections?: number;
  LocalConnectTimeoutMs?: number;
  LocalRequestTimeoutMs?: number;
  BalanceInboundConnections?: 'exact_balance';
};

export type AccessLogsConfig = {
  Enabled?: boolean;
  DisableListenerLogs?: boolean;
  Type?: 'stdout' | 'stderr' | 'file';
  Path?: string;
  JSONFormat?: string;
  TextFormat?: string;
};

export type ProxyDefaultsEntry = ConfigEntryHeader<'proxy-defaults'> & {
  Mode?: ProxyMode;
  TransparentProxy?: TransparentProxyConfig;
  MutualTLSMode?: MutualTLSMode;
  /** Opaque proxy settings; `protocol`, when set, is validated. */
  Config?: Record<string, unknown>;
  MeshGateway?: MeshGatewayConfig;
  Expose?: ExposeConfig;
  AccessLogs?: AccessLogsConfig;
};

export type HTTPHeaderModifiers = {
  Add?: Record<string, string>;
  Set?: Record<string, string>;
  Remove?: string[];
};

export type RouteHeaderMatch = {
  Name: string;
  Present?: boolean;
  Exact?: string;
  Prefix?: string;
  Suffix?: string;
  Regex?: string;
  Invert?: boolean;
};
export type RouteQueryParamMatch = {
  Name: string;
  Present?: boolean;
  Exact?: string;
  Regex?: string;
};
export type RouteHTTPMatch = {
  PathExact?: string;
  PathPrefix?: string;
  PathRegex?: string;
  Header?: RouteHeaderMatch[];
  QueryParam?: RouteQueryParamMatch[];
  Methods?: string[];
};
export type RouteDestination = {
  Service?: string;
  ServiceSubset?: string;
  PrefixRewrite?: string;
  RequestTimeout?: string;
  IdleTimeout?: string;
  NumRetries?: number;
  RetryOnConnectFailure?: boolean;
  RetryOnStatusCodes?: number[];
  RetryOn?: string[];
  RequestHeaders?: HTTPHeaderModifiers;
  ResponseHeaders?: HTTPHeaderModifiers;
};
export type ServiceRoute = { Match?: { HTTP?: RouteHTTPMatch }; Destination?: RouteDestination };

export type ServiceRouterEntry = ConfigEntryHeader<'service-router'> & { Routes?: ServiceRoute[] };

export type ServiceSplit = {
  /** Percent of traffic, 0 to 100 in steps of 0.01. */
  Weight: number;
  Service?: string;
  ServiceSubset?: string;
  RequestHeaders?: HTTPHeaderModifiers;
  ResponseHeaders?: HTTPHeaderModifiers;
};

export type ServiceSplitterEntry = ConfigEntryHeader<'service-splitter'> & {
  Splits: ServiceSplit[];
};

export type ServiceResolverSubset = { Filter?: string; OnlyPassing?: boolean };
export type ServiceResolverRedirect = {
  Service?: string;
  ServiceSubset?: string;
  Datacenter?: string;
};
export type FailoverTarget = { Service?: string; ServiceSubset?: string; Datacenter?: string };
export type ServiceResolverFailover = {
  Service?: string;
  ServiceSubset?: string;
  Datacenters?: string[];
  Targets?: FailoverTarget[];
};
export type LoadBalancerPolicy =
  'round_robin' | 'least_request' | 'ring_hash' | 'maglev' | 'random';
export type HashPolicy = {
  Field?: 'header' | 'cookie' | 'query_parameter';
  FieldValue?: string;
  CookieConfig?: { Session?: boolean; TTL?: string; Path?: string };
  SourceIP?: boolean;
  Terminal?: boolean;
};
export type LoadBalancer = {
  Policy?: LoadBalancerPolicy;
  RingHashConfig?: { MinimumRingSize?: number; MaximumRingSize?: number };
  LeastRequestConfig?: { ChoiceCount?: number };
  HashPolicies?: HashPolicy[];
};

export type ServiceResolverEntry = ConfigEntryHeader<'service-resolver'> & {
  DefaultSubset?: string;
  Subsets?: Record<string, ServiceResolverSubset>;
  Redirect?: ServiceResolverRedirect;
  /** Keyed by subset name, or "*" for any. */
  Failover?: Record<string, ServiceResolverFailover>;
  ConnectTimeout?: string;
  RequestTimeout?: string;
  LoadBalancer?: LoadBalancer;
};

/** One source of a service-intentions entry; L7 Permissions use policy's own types. */
export type SourceIntention = {
  /** A service name or "*". */
  Name: string;
  Action?: Action;
  Permissions?: Permission[];
  /** Read-only: computed when read, ignored on input. */
  Precedence?: number;
  Type: 'consul';
  Description?: string;
  LegacyID?: string;
  LegacyMeta?: Record<string, string>;
  LegacyCreateTime?: string;
  LegacyUpdateTime?: string;
};

export type ServiceIntentionsEntry = ConfigEntryHeader<'service-intentions'> & {
  Sources: SourceIntention[];
};

export type ConfigEntry =
  | ServiceDefaultsEntry
  | ProxyDefaultsEntry
  | ServiceRouterEntry
  | ServiceSplitterEntry
  | ServiceResolverEntry
  | ServiceIntentionsEntry;

// ---------------------------------------------------------------------------------------------
// Reading fields

type Obj = Record<string, unknown>;

const MAX_UINT32 = 4_294_967_295;
const MAX_META_PAIRS = 64;

const fieldPath = (path: string, key: string): string => (path ? `${path}.${key}` : key);
const keyPath = (path: string, key: string): string => `${path}[${JSON.stringify(key)}]`;
const indexPath = (path: string, i: number): string => `${path}[${i}]`;

function err(field: string, message: string): MeshError {
  return badRequest(field ? `${field}: ${message}` : message, field || undefined);
}

const quoteList = (xs: readonly string[]): string => {
  const q = xs.map((x) => JSON.stringify(x));
  return q.length <= 1 ? q.join('') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
};

/** Go's zero values: what an unsupported field may hold without being "set". */
function isUnset(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === '' ||
    v === false ||
    v === 0 ||
    (Array.isArray(v) && v.length === 0) ||
    (isObject(v) && Object.keys(v).length === 0)
  );
}

/** Drops undefined members, so outputs hold only what is set (Consul's omitempty). */
function prune<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** A user-keyed map; fromEntries makes even "__proto__" an ordinary own key. */
function userMap<V>(pairs: [string, V][]): Record<string, V> {
  return Object.fromEntries(pairs) as Record<string, V>;
}

interface Shape {
  fields: readonly string[];
  /** Consul fields Trellis refuses when set, with the reason. */
  unsupported?: Readonly<Record<string, string>>;
  /** Read-only fields clients echo back; dropped. */
  readOnly?: readonly string[];
  /** Enterprise tenancy (Namespace, Partition): accepted when empty or "default". */
  tenancy?: boolean;
}

const ENVOY_ONLY = 'it configures Envoy, and Trellis proxies are not Envoy';
const NO_PEERING = 'cluster peering needs mesh gateways';
const ENTERPRISE = 'it is a Consul Enterprise feature';

/** One object of the input, re-keyed to canonical field names, with typed readers. */
class Fields {
  private constructor(
    private readonly o: Obj,
    readonly path: string,
  ) {}

  static of(raw: unknown, path: string, shape: Shape): Fields {
    if (!isObject(raw)) throw err(path, path ? 'must be an object' : 'must be a JSON object');
    const known = new Map(shape.fields.map((f) => [normalizeKey(f), f]));
    const unsupported = new Map(
      Object.entries(shape.unsupported ?? {}).map(([f, why]) => [normalizeKey(f), [f, why]]),
    );
    const readOnly = new Set((shape.readOnly ?? []).map(normalizeKey));
    const out: Obj = {};
    const spelled = new Map<string, string>();
    for (const [k, v] of Object.entries(raw)) {
      const nk = normalizeKey(k);
      const canonical = known.get(nk);
      if (canonical !== undefined) {
        const prev = spelled.get(canonical);
        if (prev !== undefined)
          throw err(fieldPath(path, canonical), `set twice, as "${prev}" and as "${k}"`);
        spelled.set(canonical, k);
        out[canonical] = v;
        continue;
      }
      const refused = unsupported.get(nk);
      if (refused) {
        if (!isUnset(v))
          throw err(fieldPath(path, refused[0]!), `not supported by Trellis (${refused[1]})`);
        continue;
      }
      if (shape.tenancy && (nk === 'namespace' || nk === 'partition')) {
        const what = nk === 'namespace' ? 'Namespace' : 'Partition';
        if (v !== undefined && v !== null && v !== '' && v !== 'default')
          throw err(
            fieldPath(path, what),
            `Trellis has only the "default" ${what.toLowerCase()}, not ${JSON.stringify(v)}`,
          );
        continue;
      }
      if (readOnly.has(nk)) continue;
      const hint = closest(k, shape.fields);
      throw err(fieldPath(path, k), `unknown field${hint ? `; did you mean "${hint}"?` : ''}`);
    }
    return new Fields(out, path);
  }

  at(k: string): string {
    return fieldPath(this.path, k);
  }

  err(k: string, message: string): MeshError {
    return err(this.at(k), message);
  }

  has(k: string): boolean {
    return this.o[k] !== undefined && this.o[k] !== null;
  }

  raw(k: string): unknown {
    return this.o[k];
  }

  /** A string; "" counts as unset, as in Consul. */
  str(k: string): string | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw this.err(k, 'must be a string');
    return v === '' ? undefined : v;
  }

  oneOf<T extends string>(k: string, allowed: readonly T[], lowerCase = false): T | undefined {
    const v = this.str(k);
    if (v === undefined) return undefined;
    const s = lowerCase ? v.toLowerCase() : v;
    if (!(allowed as readonly string[]).includes(s))
      throw this.err(k, `must be ${quoteList(allowed)}, not ${JSON.stringify(v)}`);
    return s as T;
  }

  bool(k: string): boolean | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw this.err(k, 'must be true or false');
  }

  int(k: string, min = 0, max = MAX_UINT32): number | undefined {
    let v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) v = Number(v);
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.err(k, 'must be an integer');
    if (v < min || v > max)
      throw this.err(
        k,
        max === MAX_UINT32
          ? `must be ${min} or more, not ${v}`
          : `must be between ${min} and ${max}`,
      );
    return v;
  }

  num(k: string): number | undefined {
    let v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.err(k, 'must be a number');
    return v;
  }

  /** A Go duration string, kept as written; Go's syntax has no negative form here. */
  duration(k: string): string | undefined {
    const v = this.str(k);
    if (v === undefined) return undefined;
    if (parseDuration(v) === undefined)
      throw this.err(k, `${JSON.stringify(v)} is not a duration (e.g. "10s", "1m30s", "500ms")`);
    return v;
  }

  /** A list; a single value stands for a list of one, as Consul's weak decoding allows. */
  list(k: string): unknown[] | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) ? v : [v];
  }

  strList(k: string): string[] | undefined {
    const items = this.list(k);
    if (!items) return undefined;
    return items.map((x, i) => {
      if (typeof x !== 'string') throw err(indexPath(this.at(k), i), 'must be a string');
      return x;
    });
  }

  obj(k: string, shape: Shape): Fields | undefined {
    return this.has(k) ? Fields.of(this.o[k], this.at(k), shape) : undefined;
  }

  /** Members of a user-keyed object (subsets, failover targets, headers). */
  entries(k: string): [string, unknown][] | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) throw this.err(k, 'must be an object');
    return Object.entries(v);
  }

  strMap(k: string, maxKey = 128, maxValue = 512, maxPairs = Infinity): Record<string, string> {
    const pairs = this.entries(k);
    if (!pairs) return {};
    if (pairs.length > maxPairs) throw this.err(k, `more than ${maxPairs} pairs`);
    const p = this.at(k);
    return userMap(
      pairs.map(([mk, mv]): [string, string] => {
        if (mk === '' || mk.length > maxKey)
          throw err(p, `key ${JSON.stringify(mk.slice(0, 40))} must be 1 to ${maxKey} characters`);
        // Weak decoding: `version = 1` is the string "1".
        if (typeof mv === 'number' || typeof mv === 'boolean') mv = String(mv);
        if (typeof mv !== 'string') throw err(keyPath(p, mk), 'must be a string');
        if (mv.length > maxValue)
          throw err(keyPath(p, mk), `value longer than ${maxValue} characters`);
        return [mk, mv];
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

const NAME_RULE =
  "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-'";

/** A service name: also a DNS label and a SPIFFE path segment, so no '/', ' ', '.', '..'. */
function serviceName(f: Fields, k: string, opts: { required?: boolean; wildcard?: boolean } = {}) {
  const v = f.str(k);
  if (v === undefined) {
    if (opts.required) throw f.err(k, 'missing (required)');
    return undefined;
  }
  if (opts.wildcard && v === '*') return v;
  if (!NAME_RE.test(v))
    throw f.err(
      k,
      `${JSON.stringify(v.slice(0, 64))} is not a valid service name (${NAME_RULE}${opts.wildcard ? ', or "*"' : ''})`,
    );
  return v;
}

const SUBSET_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SUBSET_RULE =
  "1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit";

function subsetName(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v !== undefined && !SUBSET_RE.test(v))
    throw f.err(k, `${JSON.stringify(v.slice(0, 64))} is not a valid subset name (${SUBSET_RULE})`);
  return v;
}

function datacenterName(field: string, v: string): string {
  if (!NAME_RE.test(v))
    throw err(field, `${JSON.stringify(v.slice(0, 64))} is not a valid datacenter name`);
  return v;
}

const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
];

function methods(f: Fields, k: string): string[] | undefined {
  const list = f.strList(k);
  if (!list?.length) return undefined;
  const seen = new Set<string>();
  list.forEach((m, i) => {
    const p = indexPath(f.at(k), i);
    if (!HTTP_METHODS.includes(m)) {
      const upper = HTTP_METHODS.includes(m.toUpperCase());
      throw err(
        p,
        upper
          ? `${JSON.stringify(m)}: methods are upper case; write "${m.toUpperCase()}"`
          : `${JSON.stringify(m)} is not an HTTP method (${HTTP_METHODS.join(', ')})`,
      );
    }
    if (seen.has(m)) throw err(p, `${m} is listed twice`);
    seen.add(m);
  });
  return list;
}

function regex(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v === undefined) return undefined;
  const r = compileRegex(v);
  if (!r.ok) throw f.err(k, `invalid regular expression: ${r.reason}`);
  return v;
}

function absolutePath(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v !== undefined && !v.startsWith('/'))
    throw f.err(k, `must begin with "/", not ${JSON.stringify(v)}`);
  return v;
}

/** At most one of the path matchers; paths must be absolute, regexes linear-time RE2. */
function pathMatch(f: Fields): Pick<RouteHTTPMatch, 'PathExact' | 'PathPrefix' | 'PathRegex'> {
  const set = ['PathExact', 'PathPrefix', 'PathRegex'].filter((k) => f.str(k) !== undefined);
  if (set.length > 1)
    throw err(
      f.path,
      `set at most one of PathExact, PathPrefix or PathRegex (found ${set.join(' and ')})`,
    );
  return {
    PathExact: absolutePath(f, 'PathExact'),
    PathPrefix: absolutePath(f, 'PathPrefix'),
    PathRegex: regex(f, 'PathRegex'),
  };
}

/** Exactly one way to match a header or parameter; Go's zero values ("" and false) are unset. */
function exactlyOne(f: Fields, ways: readonly string[]): void {
  const set = ways.filter((k) => (k === 'Present' ? f.bool(k) === true : f.str(k) !== undefined));
  if (set.length !== 1)
    throw err(
      f.path,
      `set exactly one of ${ways.slice(0, -1).join(', ')} or ${ways[ways.length - 1]}` +
        (set.length ? ` (found ${set.join(' and ')})` : ''),
    );
}

const HEADER_NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function headerName(field: string, name: string): string {
  if (!HEADER_NAME_RE.test(name))
    throw err(field, `${JSON.stringify(name.slice(0, 64))} is not a valid HTTP header name`);
  return name;
}

const HEADER_MODIFIER_SHAPE: Shape = { fields: ['Add', 'Set', 'Remove'] };

function headerModifiers(f: Fields, k: string): HTTPHeaderModifiers | undefined {
  const m = f.obj(k, HEADER_MODIFIER_SHAPE);
  if (!m) return undefined;
  const maps = (['Add', 'Set'] as const).map((which) => {
    const map = m.strMap(which, 256, 8192);
    for (const name of Object.keys(map)) headerName(keyPath(m.at(which), name), name);
    return Object.keys(map).length ? map : undefined;
  });
  const remove = m.strList('Remove');
  remove?.forEach((name, i) => headerName(indexPath(m.at('Remove'), i), name));
  const out = prune({ Add: maps[0], Set: maps[1], Remove: remove?.length ? remove : undefined });
  return Object.keys(out).length ? out : undefined;
}

const TRANSPARENT_PROXY_SHAPE: Shape = { fields: ['OutboundListenerPort', 'DialedDirectly'] };

function transparentProxy(f: Fields): TransparentProxyConfig | undefined {
  const t = f.obj('TransparentProxy', TRANSPARENT_PROXY_SHAPE);
  if (!t) return undefined;
  return prune({
    OutboundListenerPort: t.int('OutboundListenerPort', 0, 65535),
    DialedDirectly: t.bool('DialedDirectly'),
  });
}

function meshGateway(f: Fields): MeshGatewayConfig | undefined {
  const m = f.obj('MeshGateway', { fields: ['Mode'] });
  if (!m) return undefined;
  return prune({ Mode: m.oneOf<MeshGatewayMode>('Mode', ['none', 'local', 'remote']) });
}

const EXPOSE_PATH_SHAPE: Shape = {
  fields: ['Path', 'LocalPathPort', 'ListenerPort', 'Protocol'],
  readOnly: ['ParsedFromCheck'],
};

function expose(f: Fields): ExposeConfig | undefined {
  const e = f.obj('Expose', { fields: ['Checks', 'Paths'] });
  if (!e) return undefined;
  const paths = e.list('Paths')?.map((raw, i): ExposePath => {
    const p = Fields.of(raw, indexPath(e.at('Paths'), i), EXPOSE_PATH_SHAPE);
    const path = absolutePath(p, 'Path');
    if (path === undefined) throw p.err('Path', 'missing (required)');
    return prune({
      Path: path,
      LocalPathPort: p.int('LocalPathPort', 0, 65535),
      ListenerPort: p.int('ListenerPort', 0, 65535),
      Protocol: p.oneOf<'http' | 'http2'>('Protocol', ['http', 'http2'], true),
    });
  });
  return prune({ Checks: e.bool('Checks'), Paths: paths?.length ? paths : undefined });
}

function proxyMode(f: Fields): ProxyMode | undefined {
  return f.oneOf<ProxyMode>('Mode', ['direct', 'transparent']);
}

function mutualTLSMode(f: Fields): MutualTLSMode | undefined {
  return f.oneOf<MutualTLSMode>('MutualTLSMode', ['strict', 'permissive']);
}

function protocol(f: Fields, k: string): Protocol | undefined {
  return f.oneOf<Protocol>(k, PROTOCOLS, true);
}

// ---------------------------------------------------------------------------------------------
// Kinds

const COMMON_FIELDS = ['Kind', 'Name', 'Meta'];
const COMMON_READ_ONLY = ['CreateIndex', 'ModifyIndex', 'Hash'];

function header<K extends ConfigEntryKind>(f: Fields, kind: K): ConfigEntryHeader<K> {
  const name = entryName(f, kind);
  const meta = f.strMap('Meta', 128, 512, MAX_META_PAIRS);
  return prune({ Kind: kind, Name: name, Meta: Object.keys(meta).length ? meta : undefined });
}

function entryName(f: Fields, kind: ConfigEntryKind): string {
  if (kind === 'proxy-defaults') {
    const v = f.str('Name');
    if (v === undefined)
      throw f.err('Name', 'missing (required); proxy-defaults is named "global"');
    if (v !== 'global')
      throw f.err(
        'Name',
        `proxy-defaults must be named "global", not ${JSON.stringify(v.slice(0, 64))}`,
      );
    return v;
  }
  return serviceName(f, 'Name', { required: true, wildcard: kind === 'service-intentions' })!;
}

// service-defaults ------------------------------------------------------------------------------

const UPSTREAM_SHAPE: Shape = {
  fields: [
    'Name',
    'Protocol',
    'ConnectTimeoutMs',
    'Limits',
    'PassiveHealthCheck',
    'MeshGateway',
    'BalanceOutboundConnections',
  ],
  unsupported: {
    Peer: NO_PEERING,
    EnvoyListenerJSON: ENVOY_ONLY,
    EnvoyClusterJSON: ENVOY_ONLY,
  },
  tenancy: true,
};

const LIMITS_SHAPE: Shape = {
  fields: ['MaxConnections', 'MaxPendingRequests', 'MaxConcurrentRequests'],
};

const PASSIVE_HEALTH_SHAPE: Shape = {
  fields: [
    'Interval',
    'MaxFailures',
    'EnforcingConsecutive5xx',
    'MaxEjectionPercent',
    'BaseEjectionTime',
  ],
};

function upstreamSettings(u: Fields, isOverride: boolean): UpstreamSettings {
  let name: string | undefined;
  if (isOverride) name = serviceName(u, 'Name', { required: true });
  else if (u.str('Name') !== undefined)
    throw u.err('Name', 'not allowed in Defaults, which apply to every upstream');
  const l = u.obj('Limits', LIMITS_SHAPE);
  const limits = l
    ? prune({
        MaxConnections: l.int('MaxConnections'),
        MaxPendingRequests: l.int('MaxPendingRequests'),
        MaxConcurrentRequests: l.int('MaxConcurrentRequests'),
      })
    : undefined;
  const h = u.obj('PassiveHealthCheck', PASSIVE_HEALTH_SHAPE);
  const passive = h
    ? prune({
        Interval: h.duration('Interval'),
        MaxFailures: h.int('MaxFailures'),
        EnforcingConsecutive5xx: h.int('EnforcingConsecutive5xx', 0, 100),
        MaxEjectionPercent: h.int('MaxEjectionPercent', 0, 100),
        BaseEjectionTime: h.duration('BaseEjectionTime'),
      })
    : undefined;
  return prune({
    Name: name,
    Protocol: protocol(u, 'Protocol'),
    ConnectTimeoutMs: u.int('ConnectTimeoutMs'),
    Limits: limits,
    PassiveHealthCheck: passive,
    MeshGateway: meshGateway(u),
    BalanceOutboundConnections: u.oneOf<'exact_balance'>('BalanceOutboundConnections', [
      'exact_balance',
    ]),
  });
}

function upstreamConfig(f: Fields): UpstreamConfiguration | undefined {
  const c = f.obj('UpstreamConfig', { fields: ['Defaults', 'Overrides'] });
  if (!c) return undefined;
  const d = c.obj('Defaults', UPSTREAM_SHAPE);
  const seen = new Map<string, number>();
  const overrides = c.list('Overrides')?.map((raw, i) => {
    const u = Fields.of(raw, indexPath(c.at('Overrides'), i), UPSTREAM_SHAPE);
    const s = upstreamSettings(u, true) as UpstreamSettings & { Name: string };
    const first = seen.get(s.Name);
    if (first !== undefined)
      throw u.err('Name', `"${s.Name}" is already overridden in Overrides[${first}]`);
    seen.set(s.Name, i);
    return s;
  });
  return prune({
    Defaults: d ? upstreamSettings(d, false) : undefined,
    Overrides: overrides?.length ? overrides : undefined,
  });
}

const SERVICE_DEFAULTS_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'Protocol',
    'Mode',
    'TransparentProxy',
    'MutualTLSMode',
    'MeshGateway',
    'Expose',
    'UpstreamConfig',
    'MaxInboundConnections',
    'LocalConnectTimeoutMs',
    'LocalRequestTimeoutMs',
    'BalanceInboundConnections',
  ],
  unsupported: {
    EnvoyExtensions: ENVOY_ONLY,
    ExternalSNI: 'it applies to terminating gateways',
    Destination: 'it routes through terminating gateways',
    RateLimits: ENTERPRISE,
  },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function serviceDefaults(f: Fields): ServiceDefaultsEntry {
  return prune({
    ...header(f, 'service-defaults'),
    Protocol: protocol(f, 'Protocol'),
    Mode: proxyMode(f),
    TransparentProxy: transparentProxy(f),
    MutualTLSMode: mutualTLSMode(f),
    MeshGateway: meshGateway(f),
    Expose: expose(f),
    UpstreamConfig: upstreamConfig(f),
    MaxInboundConnections: f.int('MaxInboundConnections'),
    LocalConnectTimeoutMs: f.int('LocalConnectTimeoutMs'),
    LocalRequestTimeoutMs: f.int('LocalRequestTimeoutMs'),
    BalanceInboundConnections: f.oneOf<'exact_balance'>('BalanceInboundConnections', [
      'exact_balance',
    ]),
  });
}

// proxy-defaults --------------------------------------------------------------------------------

const ACCESS_LOGS_SHAPE: Shape = {
  fields: ['Enabled', 'DisableListenerLogs', 'Type', 'Path', 'JSONFormat', 'TextFormat'],
};

function accessLogs(f: Fields): AccessLogsConfig | undefined {
  const a = f.obj('AccessLogs', ACCESS_LOGS_SHAPE);
  if (!a) return undefined;
  const type = a.oneOf<'stdout' | 'stderr' | 'file'>('Type', ['stdout', 'stderr', 'file']);
  const path = a.str('Path');
  if (type === 'file' && path === undefined) throw a.err('Path', 'required when Type is "file"');
  if (type !== 'file' && path !== undefined)
    throw a.err('Path', 'only allowed when Type is "file"');
  const json = a.str('JSONFormat');
  const text = a.str('TextFormat');
  if (json !== undefined && text !== undefined)
    throw err(a.path, 'JSONFormat and TextFormat are mutually exclusive');
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw a.err('JSONFormat', 'must be a JSON object of log fields');
    }
    if (!isObject(parsed)) throw a.err('JSONFormat', 'must be a JSON object of log fields');
  }
  return prune({
    Enabled: a.bool('Enabled'),
    DisableListenerLogs: a.bool('DisableListenerLogs'),
    Type: type,
    Path: path,
    JSONFormat: json,
    TextFormat: text,
  });
}

/** The protocol in proxy Config; keys are matched as Consul's weak decoding does. */
export function configProtocol(config: Record<string, unknown> | undefined): Protocol | undefined {
  for (const [k, v] of Object.entries(config ?? {})) {
    if (normalizeKey(k) !== 'protocol' || typeof v !== 'string') continue;
    const p = v.toLowerCase();
    if ((PROTOCOLS as readonly string[]).includes(p)) return p as Protocol;
  }
  return undefined;
}

const PROXY_DEFAULTS_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'Mode',
    'TransparentProxy',
    'MutualTLSMode',
    'Config',
    'MeshGateway',
    'Expose',
    'AccessLogs',
  ],
  unsupported: {
    EnvoyExtensions: ENVOY_ONLY,
    FailoverPolicy: ENTERPRISE,
    PrioritizeByLocality: ENTERPRISE,
  },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function proxyDefaults(f: Fields): ProxyDefaultsEntry {
  let config: Record<string, unknown> | undefined;
  const pairs = f.entries('Config');
  if (pairs) {
    for (const [k, v] of pairs) {
      if (normalizeKey(k) !== 'protocol' || v === null || v === '') continue;
      const at = fieldPath(f.at('Config'), k);
      if (typeof v !== 'string') throw err(at, 'must be a string');
      if (!(PROTOCOLS as readonly string[]).includes(v.toLowerCase()))
        throw err(at, `must be ${quoteList(PROTOCOLS)}, not ${JSON.stringify(v)}`);
    }
    config = pairs.length ? userMap(pairs) : undefined;
  }
  return prune({
    ...header(f, 'proxy-defaults'),
    Mode: proxyMode(f),
    TransparentProxy: transparentProxy(f),
    MutualTLSMode: mutualTLSMode(f),
    Config: config,
    MeshGateway: meshGateway(f),
    Expose: expose(f),
    AccessLogs: accessLogs(f),
  });
}

// service-router --------------------------------------------------------------------------------

const ROUTE_HEADER_WAYS = ['Present', 'Exact', 'Prefix', 'Suffix', 'Regex'] as const;
const QUERY_PARAM_WAYS = ['Present', 'Exact', 'Regex'] as const;

const ROUTE_HTTP_SHAPE: Shape = {
  fields: ['PathExact', 'PathPrefix', 'PathRegex', 'Header', 'QueryParam', 'Methods'],
};

function routeHTTPMatch(h: Fields): RouteHTTPMatch {
  const paths = pathMatch(h);
  const header = h.list('Header')?.map((raw, i): RouteHeaderMatch => {
    const m = Fields.of(raw, indexPath(h.at('Header'), i), {
      fields: ['Name', ...ROUTE_HEADER_WAYS, 'Invert'],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    headerName(m.at('Name'), name);
    exactlyOne(m, ROUTE_HEADER_WAYS);
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Prefix: m.str('Prefix'),
      Suffix: m.str('Suffix'),
      Regex: regex(m, 'Regex'),
      Invert: m.bool('Invert') || undefined,
    });
  });
  const query = h.list('QueryParam')?.map((raw, i): RouteQueryParamMatch => {
    const m = Fields.of(raw, indexPath(h.at('QueryParam'), i), {
      fields: ['Name', ...QUERY_PARAM_WAYS],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    exactlyOne(m, QUERY_PARAM_WAYS);
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Regex: regex(m, 'Regex'),
    });
  });
  return prune({
    ...paths,
    Header: header?.length ? header : undefined,
    QueryParam: query?.length ? query : undefined,
    Methods: methods(h, 'Methods'),
  });
}

export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

const DESTINATION_SHAPE: Shape = {
  fields: [
    'Service',
    'ServiceSubset',
    'PrefixRewrite',
    'RequestTimeout',
    'IdleTimeout',
    'NumRetries',
    'RetryOnConnectFailure',
    'RetryOnStatusCodes',
    'RetryOn',
    'RequestHeaders',
    'ResponseHeaders',
  ],
  tenancy: true,
};

function routeDestination(d: Fields, match: RouteHTTPMatch | undefined): RouteDestination {
  const prefixRewrite = d.str('PrefixRewrite');
  if (prefixRewrite !== undefined && !match?.PathPrefix && !match?.PathExact)
    throw d.err('PrefixRewrite', 'requires the route to match on PathPrefix or PathExact');
  const codes = d.list('RetryOnStatusCodes')?.map((raw, i) => {
    const at = indexPath(d.at('RetryOnStatusCodes'), i);
    const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 100 || n > 599)
      throw err(at, `must be an HTTP status code from 100 to 599, not ${JSON.stringify(raw)}`);
    return n;
  });
  const retryOn = d.strList('RetryOn');
  retryOn?.forEach((c, i) => {
    if (!(RETRY_ON as readonly string[]).includes(c))
      throw err(
        indexPath(d.at('RetryOn'), i),
        `${JSON.stringify(c)} is not a retry condition (${RETRY_ON.join(', ')})`,
      );
  });
  return prune({
    Service: serviceName(d, 'Service'),
    ServiceSubset: subsetName(d, 'ServiceSubset'),
    PrefixRewrite: prefixRewrite,
    RequestTimeout: d.duration('RequestTimeout'),
    IdleTimeout: d.duration('IdleTimeout'),
    NumRetries: d.int('NumRetries'),
    RetryOnConnectFailure: d.bool('RetryOnConnectFailure') || undefined,
    RetryOnStatusCodes: codes?.length ? codes : undefined,
    RetryOn: retryOn?.length ? retryOn : undefined,
    RequestHeaders: headerModifiers(d, 'RequestHeaders'),
    ResponseHeaders: headerModifiers(d, 'ResponseHeaders'),
  });
}

const SERVICE_ROUTER_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Routes'],
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function serviceRouter(f: Fields): ServiceRouterEntry {
  const routes = f.list('Routes')?.map((raw, i): ServiceRoute => {
    const r = Fields.of(raw, indexPath(f.at('Routes'), i), { fields: ['Match', 'Destination'] });
    const m = r.obj('Match', { fields: ['HTTP'] });
    const h = m?.obj('HTTP', ROUTE_HTTP_SHAPE);
    const http = h ? routeHTTPMatch(h) : undefined;
    const d = r.obj('Destination', DESTINATION_SHAPE);
    return prune({
      Match: m ? prune({ HTTP: http }) : undefined,
      Destination: d ? routeDestination(d, http) : undefined,
    });
  });
  return prune({ ...header(f, 'service-router'), Routes: routes?.length ? routes : undefined });
}

// service-splitter ------------------------------------------------------------------------------

const SPLIT_SHAPE: Shape = {
  fields: ['Weight', 'Service', 'ServiceSubset', 'RequestHeaders', 'ResponseHeaders'],
  tenancy: true,
};

const SERVICE_SPLITTER_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Splits'],
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function serviceSplitter(f: Fields): ServiceSplitterEntry {
  const head = header(f, 'service-splitter');
  const raw = f.list('Splits') ?? [];
  if (raw.length === 0) throw f.err('Splits', 'at least one split is required');
  let total = 0;
  const seen = new Map<string, number>();
  const splits = raw.map((item, i): ServiceSplit => {
    const s = Fields.of(item, indexPath(f.at('Splits'), i), SPLIT_SHAPE);
    const weight = s.num('Weight') ?? 0;
    if (weight < 0 || weight > 100)
      throw s.err('Weight', `must be between 0 and 100, not ${weight}`);
    // Compared in hundredths as integers, so 33.33 * 3 is exactly 99.99, not nearly 100.
    const hundredths = Math.round(weight * 100);
    if (Math.abs(weight * 100 - hundredths) > 1e-6)
      throw s.err(
        'Weight',
        `${weight} has more than two decimal places (weights go in steps of 0.01)`,
      );
    total += hundredths;
    const split = prune({
      Weight: weight,
      Service: serviceName(s, 'Service'),
      ServiceSubset: subsetName(s, 'ServiceSubset'),
      RequestHeaders: headerModifiers(s, 'RequestHeaders'),
      ResponseHeaders: headerModifiers(s, 'ResponseHeaders'),
    });
    const service = split.Service ?? head.Name;
    const key = `${service}\u0000${split.ServiceSubset ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined)
      throw err(
        s.path,
        `duplicate split to service "${service}"${split.ServiceSubset ? ` subset "${split.ServiceSubset}"` : ''} (same as Splits[${first}])`,
      );
    seen.set(key, i);
    return split;
  });
  if (total !== 10000) throw f.err('Splits', `weights sum to ${total / 100}, must sum to 100`);
  return { ...head, Splits: splits };
}

// service-resolver ------------------------------------------------------------------------------

const REDIRECT_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenter'],
  unsupported: { Peer: NO_PEERING, SamenessGroup: ENTERPRISE },
  tenancy: true,
};

const FAILOVER_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenters', 'Targets'],
  unsupported: { Policy: ENTERPRISE, SamenessGroup: ENTERPRISE },
  tenancy: true,
};

const TARGET_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenter'],
  unsupported: { Peer: NO_PEERING },
  tenancy: true,
};

const LOAD_BALANCER_SHAPE: Shape = {
  fields: ['Policy', 'RingHashConfig', 'LeastRequestConfig', 'HashPolicies'],
};

const HASH_POLICY_SHAPE: Shape = {
  fields: ['Field', 'FieldValue', 'CookieConfig', 'SourceIP', 'Terminal'],
};

const LB_POLICIES: readonly LoadBalancerPolicy[] = [
  'round_robin',
  'least_request',
  'ring_hash',
  'maglev',
  'random',
];

function hashPolicy(h: Fields): HashPolicy {
  const field = h.oneOf<NonNullable<HashPolicy['Field']>>('Field', [
    'header',
    'cookie',
    'query_parameter',
  ]);
  const value = h.str('FieldValue');
  const sourceIP = h.bool('SourceIP') || undefined;
  if (field && sourceIP) throw err(h.path, 'set either Field or SourceIP, not both');
  if (!field && !sourceIP) {
    if (value !== undefined) throw h.err('Field', 'required when FieldValue is set');
    throw err(h.path, 'set one of Field or SourceIP');
  }
  if (field && value === undefined) throw h.err('FieldValue', 'required when Field is set');
  const c = h.obj('CookieConfig', { fields: ['Session', 'TTL', 'Path'] });
  if (c && field !== 'cookie') throw h.err('CookieConfig', 'only allowed with Field "cookie"');
  const session = c?.bool('Session') || undefined;
  const ttl = c?.duration('TTL');
  if (c && session && ttl !== undefined)
    throw err(c.path, 'Session and TTL are mutually exclusive');
  return prune({
    Field: field,
    FieldValue: value,
    CookieConfig: c ? prune({ Session: session, TTL: ttl, Path: c.str('Path') }) : undefined,
    SourceIP: sourceIP,
    Terminal: h.bool('Terminal') || undefined,
  });
}

function loadBalancer(f: Fields): LoadBalancer | undefined {
  const lb = f.obj('LoadBalancer', LOAD_BALANCER_SHAPE);
  if (!lb) return undefined;
  const policy = lb.oneOf('Policy', LB_POLICIES);
  const rh = lb.obj('RingHashConfig', { fields: ['MinimumRingSize', 'MaximumRingSize'] });
  if (rh && policy !== 'ring_hash')
    throw lb.err('RingHashConfig', 'only allowed with Policy "ring_hash"');
  const ringHash = rh
    ? prune({
        MinimumRingSize: rh.int('MinimumRingSize'),
        MaximumRingSize: rh.int('MaximumRingSize'),
      })
    : undefined;
  if (
    ringHash?.MinimumRingSize &&
    ringHash.MaximumRingSize &&
    ringHash.MinimumRingSize > ringHash.MaximumRingSize
  )
    throw err(
      rh!.path,
      `MinimumRingSize (${ringHash.MinimumRingSize}) is larger than MaximumRingSize (${ringHash.MaximumRingSize})`,
    );
  const lr = lb.obj('LeastRequestConfig', { fields: ['ChoiceCount'] });
  if (lr && policy !== 'least_request')
    throw lb.err('LeastRequestConfig', 'only allowed with Policy "least_request"');
  const raw = lb.list('HashPolicies') ?? [];
  if (raw.length && policy !== 'ring_hash' && policy !== 'maglev')
    throw lb.err('HashPolicies', 'only allowed with Policy "ring_hash" or "maglev"');
  const hashPolicies = raw.map((item, i) =>
    hashPolicy(Fields.of(item, indexPath(lb.at('HashPolicies'), i), HASH_POLICY_SHAPE)),
  );
  return prune({
    Policy: policy,
    RingHashConfig: ringHash,
    LeastRequestConfig: lr ? prune({ ChoiceCount: lr.int('ChoiceCount') }) : undefined,
    HashPolicies: hashPolicies.length ? hashPolicies : undefined,
  });
}

const SERVICE_RESOLVER_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'DefaultSubset',
    'Subsets',
    'Redirect',
    'Failover',
    'ConnectTimeout',
    'RequestTimeout',
    'LoadBalancer',
  ],
  unsupported: { PrioritizeByLocality: ENTERPRISE },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function serviceResolver(f: Fields): ServiceResolverEntry {
  const head = header(f, 'service-resolver');
  const name = head.Name;
  const subsetPairs = (f.entries('Subsets') ?? []).map(
    ([key, raw]): [string, ServiceResolverSubset] => {
      const at = keyPath(f.at('Subsets'), key);
      if (!SUBSET_RE.test(key))
        throw err(
          at,
          `${JSON.stringify(key.slice(0, 64))} is not a valid subset name (${SUBSET_RULE})`,
        );
      const s = Fields.of(raw, at, { fields: ['Filter', 'OnlyPassing'] });
      const filter = s.str('Filter');
      if (filter !== undefined) {
        try {
          compileFilter(filter);
        } catch (e) {
          if (!isMeshError(e)) throw e;
          throw s.err('Filter', `bad filter for subset "${key}": ${e.message}`);
        }
      }
      return [key, prune({ Filter: filter, OnlyPassing: s.bool('OnlyPassing') || undefined })];
    },
  );
  const subsets = userMap(subsetPairs);
  const names = subsetPairs.map(([k]) => k);
  const hasSubset = (s: string): boolean => Object.hasOwn(subsets, s);
  const known = names.length ? ` (${names.join(', ')})` : ' (there are none)';

  // A redirecting resolver resolves nothing itself, so its own subsets could never be used.
  if (!isUnset(f.raw('Redirect')))
    for (const other of ['Subsets', 'DefaultSubset', 'Failover'])
      if (!isUnset(f.raw(other)))
        throw f.err(
          'Redirect',
          `cannot be combined with ${other}: a redirected service resolves nothing itself`,
        );

  const defaultSubset = subsetName(f, 'DefaultSubset');
  if (defaultSubset !== undefined && !hasSubset(defaultSubset))
    throw f.err('DefaultSubset', `"${defaultSubset}" is not one of the Subsets${known}`);

  let redirect: ServiceResolverRedirect | undefined;
  const r = f.obj('Redirect', REDIRECT_SHAPE);
  if (r) {
    redirect = prune({
      Service: serviceName(r, 'Service'),
      ServiceSubset: subsetName(r, 'ServiceSubset'),
      Datacenter: r.str('Datacenter') && datacenterName(r.at('Datacenter'), r.str('Datacenter')!),
    });
    if (!redirect.Service && !redirect.ServiceSubset && !redirect.Datacenter)
      throw f.err('Redirect', 'set at least one of Service, ServiceSubset or Datacenter');
    const toSelf = (redirect.Service ?? name) === name;
    if (toSelf && redirect.ServiceSubset && !redirect.Datacenter)
      throw r.err(
        'ServiceSubset',
        `"${name}" redirects, so it has no subsets of its own; name the Service that defines "${redirect.ServiceSubset}"`,
      );
    if (toSelf && !redirect.Datacenter) throw f.err('Redirect', `redirects "${name}" to itself`);
  }

  const failoverPairs = (f.entries('Failover') ?? []).map(
    ([key, raw]): [string, ServiceResolverFailover] => {
      const at = keyPath(f.at('Failover'), key);
      if (key !== '*' && !hasSubset(key))
        throw err(
          at,
          `there is no subset "${key}" to fail over from; use "*" or one of the Subsets${known}`,
        );
      const o = Fields.of(raw, at, FAILOVER_SHAPE);
      const ownSubset = (svc: string | undefined, sub: string | undefined, g: Fields): void => {
        if (sub !== undefined && (svc ?? name) === name && !hasSubset(sub))
          throw g.err('ServiceSubset', `"${sub}" is not one of the Subsets of "${name}"${known}`);
      };
      const dcs = o
        .strList('Datacenters')
        ?.map((dc, i) => datacenterName(indexPath(o.at('Datacenters'), i), dc));
      const targets = o.list('Targets')?.map((item, i): FailoverTarget => {
        const t = Fields.of(item, indexPath(o.at('Targets'), i), TARGET_SHAPE);
        const target = prune({
          Service: serviceName(t, 'Service'),
          ServiceSubset: subsetName(t, 'ServiceSubset'),
          Datacenter:
            t.str('Datacenter') && datacenterName(t.at('Datacenter'), t.str('Datacenter')!),
        });
        if (!target.Service && !target.ServiceSubset && !target.Datacenter)
          throw err(t.path, 'set at least one of Service, ServiceSubset or Datacenter');
        ownSubset(target.Service, target.ServiceSubset, t);
        return target;
      });
      const failover = prune({
        Service: serviceName(o, 'Service'),
        ServiceSubset: subsetName(o, 'ServiceSubset'),
        Datacenters: dcs?.length ? dcs : undefined,
        Targets: targets?.length ? targets : undefined,
      });
      if (failover.Targets && (failover.Service || failover.ServiceSubset || failover.Datacenters))
        throw o.err('Targets', 'cannot be combined with Service, ServiceSubset or Datacenters');
      if (
        !failover.Targets &&
        !failover.Service &&
        !failover.ServiceSubset &&
        !failover.Datacenters
      )
        throw err(at, 'set at least one of Service, ServiceSubset, Datacenters or Targets');
      ownSubset(failover.Service, failover.ServiceSubset, o);
      return [key, failover];
    },
  );

  return prune({
    ...head,
    DefaultSubset: defaultSubset,
    Subsets: subsetPairs.length ? subsets : undefined,
    Redirect: redirect,
    Failover: failoverPairs.length ? userMap(failoverPairs) : undefined,
    ConnectTimeout: f.duration('ConnectTimeout'),
    RequestTimeout: f.duration('RequestTimeout'),
    LoadBalancer: loadBalancer(f),
  });
}

// service-intentions ----------------------------------------------------------------------------

const INTENTION_HEADER_WAYS = [
  'Present',
  'Exact',
  'Prefix',
  'Suffix',
  'Contains',
  'Regex',
] as const;

const SOURCE_SHAPE: Shape = {
  fields: [
    'Name',
    'Action',
    'Permissions',
    'Type',
    'Description',
    'LegacyID',
    'LegacyMeta',
    'LegacyCreateTime',
    'LegacyUpdateTime',
  ],
  unsupported: { Peer: NO_PEERING, SamenessGroup: ENTERPRISE },
  readOnly: ['Precedence'],
  tenancy: true,
};

const NO_JWT = 'Trellis does not verify JWTs';

function action(f: Fields, required: boolean): Action | undefined {
  const a = f.str('Action');
  if (a === undefined) {
    if (required) throw f.err('Action', 'missing (required); use "allow" or "deny"');
    return undefined;
  }
  if (a !== 'allow' && a !== 'deny')
    throw f.err('Action', `must be "allow" or "deny", not ${JSON.stringify(a)}`);
  return a;
}

function intentionHTTP(h: Fields): HttpMatch {
  const paths = pathMatch(h);
  const header = h.list('Header')?.map((raw, i): HeaderMatch => {
    const m = Fields.of(raw, indexPath(h.at('Header'), i), {
      fields: ['Name', ...INTENTION_HEADER_WAYS, 'Invert', 'IgnoreCase'],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    headerName(m.at('Name'), name);
    exactlyOne(m, INTENTION_HEADER_WAYS);
    const ignoreCase = m.bool('IgnoreCase') || undefined;
    if (ignoreCase && (m.bool('Present') || m.str('Regex') !== undefined))
      throw m.err('IgnoreCase', 'only applies to Exact, Prefix, Suffix or Contains');
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Prefix: m.str('Prefix'),
      Suffix: m.str('Suffix'),
      Contains: m.str('Contains'),
      Regex: regex(m, 'Regex'),
      Invert: m.bool('Invert') || undefined,
      IgnoreCase: ignoreCase,
    });
  });
  const http: HttpMatch = prune({
    ...paths,
    Header: header?.length ? header : undefined,
    Methods: methods(h, 'Methods'),
  });
  if (Object.keys(http).length === 0)
    throw err(h.path, 'set at least one of PathExact, PathPrefix, PathRegex, Header or Methods');
  return http;
}

function sourceIntention(s: Fields): SourceIntention {
  const name = serviceName(s, 'Name', { required: true, wildcard: true })!;
  const act = action(s, false);
  const permissions = s.list('Permissions')?.map((raw, i): Permission => {
    const p = Fields.of(raw, indexPath(s.at('Permissions'), i), {
      fields: ['Action', 'HTTP'],
      unsupported: { JWT: NO_JWT },
    });
    const permAction = action(p, true)!;
    const h = p.obj('HTTP', {
      fields: ['PathExact', 'PathPrefix', 'PathRegex', 'Header', 'Methods'],
    });
    if (!h) throw p.err('HTTP', 'missing (required): what requests the permission applies to');
    return { Action: permAction, HTTP: intentionHTTP(h) };
  });
  if (act && permissions?.length)
    throw err(s.path, 'Action and Permissions are mutually exclusive');
  if (!act && !permissions?.length) throw err(s.path, 'set one of Action or Permissions');
  const type = s.str('Type');
  if (type !== undefined && type !== 'consul')
    throw s.err('Type', `must be "consul", not ${JSON.stringify(type)}`);
  const legacyMeta = s.strMap('LegacyMeta');
  const source: SourceIntention = prune({
    Name: name,
    Action: act,
    Permissions: permissions?.length ? permissions : undefined,
    Type: 'consul' as const,
    Description: s.str('Description'),
    LegacyID: s.str('LegacyID'),
    LegacyMeta: Object.keys(legacyMeta).length ? legacyMeta : undefined,
    LegacyCreateTime: s.str('LegacyCreateTime'),
    LegacyUpdateTime: s.str('LegacyUpdateTime'),
  });
  return source;
}

const SERVICE_INTENTIONS_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Sources'],
  unsupported: { JWT: NO_JWT },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

function serviceIntentions(f: Fields): ServiceIntentionsEntry {
  const head = header(f, 'service-intentions');
  const seen = new Map<string, number>();
  const sources = (f.list('Sources') ?? []).map((raw, i) => {
    const s = Fields.of(raw, indexPath(f.at('Sources'), i), SOURCE_SHAPE);
    const source = sourceIntention(s);
    const first = seen.get(source.Name);
    if (first !== undefined)
      throw s.err('Name', `"${source.Name}" is already listed in Sources[${first}]`);
    seen.set(source.Name, i);
    // The decision engine's own rule check, so what is stored is what policy will evaluate.
    const problem = validateRule({
      ID: `${source.Name} => ${head.Name}`,
      SourceName: source.Name,
      DestinationName: head.Name,
      Action: source.Action,
      Permissions: source.Permissions,
    });
    if (problem) throw err(s.path, problem);
    return source;
  });
  return { ...head, Sources: sources };
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** Kinds Consul has that Trellis does not serve (gateways, peering, Enterprise). */
const OTHER_CONSUL_KINDS = [
  'mesh',
  'ingress-gateway',
  'terminating-gateway',
  'exported-services',
  'api-gateway',
  'bound-api-gateway',
  'http-route',
  'tcp-route',
  'inline-certificate',
  'file-system-certificate',
  'jwt-provider',
  'sameness-group',
  'control-plane-request-limit',
  'partition-exports',
];

function entryKind(body: Obj): ConfigEntryKind {
  const kinds = Object.entries(body).filter(([k]) => normalizeKey(k) === 'kind');
  if (kinds.length > 1)
    throw err('Kind', `set twice, as "${kinds[0]![0]}" and as "${kinds[1]![0]}"`);
  const raw = kinds[0]?.[1];
  const valid = `valid kinds: ${CONFIG_ENTRY_KINDS.join(', ')}`;
  if (raw === undefined || raw === null || raw === '')
    throw err('Kind', `missing (required); ${valid}`);
  if (typeof raw !== 'string') throw err('Kind', `must be a string; ${valid}`);
  const kind = raw.toLowerCase();
  if ((CONFIG_ENTRY_KINDS as readonly string[]).includes(kind)) return kind as ConfigEntryKind;
  if (OTHER_CONSUL_KINDS.includes(kind))
    throw err('Kind', `config entry kind "${kind}" is not supported by Trellis; ${valid}`);
  const hint = closest(raw, CONFIG_ENTRY_KINDS);
  throw err(
    'Kind',
    `unknown config entry kind ${JSON.stringify(raw.slice(0, 64))}; ${hint ? `did you mean "${hint}"? ` : ''}${valid}`,
  );
}

/**
 * Validates a config entry body (parsed JSON, or a file's plain value) and returns it in
 * canonical form: CamelCase keys, only set fields, protocols lower-cased, Type "consul" on
 * intention sources. Read-only fields (CreateIndex, ModifyIndex, Precedence) are dropped.
 * Throws a 400 MeshError naming the field.
 */
export function normalizeConfigEntry(body: unknown): ConfigEntry {
  if (!isObject(body)) throw err('', 'config entry must be a JSON object with Kind and Name');
  const kind = entryKind(body);
  switch (kind) {
    case 'service-defaults':
      return serviceDefaults(Fields.of(body, '', SERVICE_DEFAULTS_SHAPE));
    case 'proxy-defaults':
      return proxyDefaults(Fields.of(body, '', PROXY_DEFAULTS_SHAPE));
    case 'service-router':
      return serviceRouter(Fields.of(body, '', SERVICE_ROUTER_SHAPE));
    case 'service-splitter':
      return serviceSplitter(Fields.of(body, '', SERVICE_SPLITTER_SHAPE));
    case 'service-resolver':
      return serviceResolver(Fields.of(body, '', SERVICE_RESOLVER_SHAPE));
    case 'service-intentions':
      return serviceIntentions(Fields.of(body, '', SERVICE_INTENTIONS_SHAPE));
  }
}

// ---------------------------------------------------------------------------------------------
// Checks across entries

/** The stored entries, as validateConfigGraph and validateConfigDelete see them. */
export interface ConfigEntryView {
  get(kind: ConfigEntryKind, name: string): ConfigEntry | undefined;
  list(kind: ConfigEntryKind): ConfigEntry[];
}

const HTTP_FAMILY: readonly Protocol[] = ['http', 'http2', 'grpc'];
const isHttpFamily = (p: Protocol): boolean => HTTP_FAMILY.includes(p);

/** A service's protocol: its service-defaults, else proxy-defaults "global" Config, else tcp. */
export function serviceProtocol(service: string, view: ConfigEntryView): Protocol {
  const sd = view.get('service-defaults', service);
  if (sd?.Kind === 'service-defaults' && sd.Protocol) return sd.Protocol;
  const pd = view.get('proxy-defaults', 'global');
  if (pd?.Kind === 'proxy-defaults') return configProtocol(pd.Config) ?? 'tcp';
  return 'tcp';
}

interface Problem {
  field?: string;
  reason: string;
  /** What to do; shown only for the entry being written. */
  hint?: string;
}

const label = (kind: string, name: string): string => `${kind} "${name}"`;
const useHttp = (service: string): string =>
  `set Protocol = "http" in service-defaults "${service}"`;

function subsetProblem(
  service: string,
  subset: string,
  field: string,
  view: ConfigEntryView,
): Problem | undefined {
  const r = view.get('service-resolver', service);
  if (r?.Kind !== 'service-resolver')
    return {
      field,
      reason: `subset "${subset}" is not defined: there is no service-resolver "${service}"`,
    };
  if (!r.Subsets || !Object.hasOwn(r.Subsets, subset))
    return { field, reason: `service-resolver "${service}" does not define subset "${subset}"` };
  return undefined;
}

/** Router/splitter targets: compatible protocol, and a subset the target's resolver defines. */
function targetProblems(
  owner: string,
  ownerProtocol: Protocol,
  service: string | undefined,
  subset: string | undefined,
  field: string,
  view: ConfigEntryView,
): Problem[] {
  const target = service ?? owner;
  const out: Problem[] = [];
  if (target !== owner) {
    const p = serviceProtocol(target, view);
    if (p !== ownerProtocol && !(isHttpFamily(p) && isHttpFamily(ownerProtocol)))
      out.push({
        field: `${field}.Service`,
        reason: `service "${target}" has protocol "${p}", which is not compatible with protocol "${ownerProtocol}" of "${owner}"`,
      });
  }
  if (subset !== undefined) {
    const sp = subsetProblem(target, subset, `${field}.ServiceSubset`, view);
    if (sp) out.push(sp);
  }
  return out;
}

/** Every cross-entry problem of one entry, in the order they are reported. */
function entryProblems(e: ConfigEntry, view: ConfigEntryView): Problem[] {
  const out: Problem[] = [];
  switch (e.Kind) {
    case 'service-router':
    case 'service-splitter': {
      const proto = serviceProtocol(e.Name, view);
      if (!isHttpFamily(proto))
        out.push({
          reason: `protocol "${proto}" does not support ${e.Kind === 'service-router' ? 'routing' : 'splitting'}`,
          hint: useHttp(e.Name),
        });
      if (e.Kind === 'service-router') {
        (e.Routes ?? []).forEach((r, i) => {
          const d = r.Destination;
          if (d)
            out.push(
              ...targetProblems(
                e.Name,
                proto,
                d.Service,
                d.ServiceSubset,
                `Routes[${i}].Destination`,
                view,
              ),
            );
        });
      } else {
        e.Splits.forEach((s, i) =>
          out.push(
            ...targetProblems(e.Name, proto, s.Service, s.ServiceSubset, `Splits[${i}]`, view),
          ),
        );
      }
      break;
    }
    case 'service-resolver': {
      // References to this resolver's own subsets were checked when it was normalized.
      const ref = (svc: string | undefined, sub: string | undefined, field: string): void => {
        if (sub === undefined || svc === undefined || svc === e.Name) return;
        const p = subsetProblem(svc, sub, `${field}.ServiceSubset`, view);
        if (p) out.push(p);
      };
      if (e.Redirect) ref(e.Redirect.Service, e.Redirect.ServiceSubset, 'Redirect');
      for (const [key, f] of Object.entries(e.Failover ?? {})) {
        const at = `Failover[${JSON.stringify(key)}]`;
        ref(f.Service, f.ServiceSubset, at);
        (f.Targets ?? []).forEach((t, i) => ref(t.Service, t.ServiceSubset, `${at}.Targets[${i}]`));
      }
      break;
    }
    case 'service-intentions': {
      if (e.Name === '*') break;
      const i = e.Sources.findIndex((s) => s.Permissions?.length);
      if (i < 0) break;
      const proto = serviceProtocol(e.Name, view);
      if (!isHttpFamily(proto))
        out.push({
          field: `Sources[${i}].Permissions`,
          reason: `L7 permissions need an HTTP-family protocol (http, http2 or grpc), but "${e.Name}" has protocol "${proto}"`,
          hint: useHttp(e.Name),
        });
      break;
    }
    default:
      break;
  }
  return out;
}

const describeProblem = (p: Problem, withHint: boolean): string =>
  `${p.field ? `${p.field}: ` : ''}${p.reason}${withHint && p.hint ? `; ${p.hint}` : ''}`;

/** Kinds whose entries can be broken by a change to an entry of `kind`. */
function dependentKinds(kind: ConfigEntryKind): ConfigEntryKind[] {
  switch (kind) {
    case 'service-defaults':
    case 'proxy-defaults':
      return ['service-router', 'service-splitter', 'service-intentions'];
    case 'service-resolver':
      return ['service-router', 'service-splitter', 'service-resolver'];
    default:
      return [];
  }
}

function overlay(
  view: ConfigEntryView,
  kind: ConfigEntryKind,
  name: string,
  entry: ConfigEntry | undefined,
): ConfigEntryView {
  return {
    get: (k, n) => (k === kind && n === name ? entry : view.get(k, n)),
    list: (k) =>
      k !== kind
        ? view.list(k)
        : [...view.list(k).filter((e) => e.Name !== name), ...(entry ? [entry] : [])],
  };
}

/**
 * The first entry that was valid before the change and is not after it, with its new problem.
 * Entries already broken in the same way are left alone, so one bad entry cannot block
 * unrelated writes.
 */
function brokenDependent(
  kind: ConfigEntryKind,
  name: string,
  before: ConfigEntryView,
  after: ConfigEntryView,
): { entry: ConfigEntry; problem: Problem } | undefined {
  for (const k of dependentKinds(kind)) {
    for (const dep of after.list(k)) {
      if (dep.Kind === kind && dep.Name === name) continue;
      const now = entryProblems(dep, after);
      if (now.length === 0) continue;
      const old = new Set(entryProblems(dep, before).map((p) => describeProblem(p, false)));
      const fresh = now.find((p) => !old.has(describeProblem(p, false)));
      if (fresh) return { entry: dep, problem: fresh };
    }
  }
  return undefined;
}

/**
 * The checks Consul makes across entries when one is written: routers and splitters need an
 * HTTP-family protocol, compatible target protocols and defined subsets; L7 intentions need an
 * HTTP-family destination; a change to service-defaults, proxy-defaults or a resolver must not
 * break an entry that depends on it. `entry` is the normalized entry as it would be stored;
 * `view` holds the current entries. Returns a message, or undefined when the write is fine.
 */
export function validateConfigGraph(entry: ConfigEntry, view: ConfigEntryView): string | undefined {
  const after = overlay(view, entry.Kind, entry.Name, entry);
  const own = entryProblems(entry, after)[0];
  if (own) return `${label(entry.Kind, entry.Name)}: ${describeProblem(own, true)}`;
  const broken = brokenDependent(entry.Kind, entry.Name, view, after);
  if (broken)
    return `${label(entry.Kind, entry.Name)}: would invalidate ${label(broken.entry.Kind, broken.entry.Name)}: ${describeProblem(broken.problem, false)}`;
  return undefined;
}

/**
 * Whether deleting an entry leaves the others valid: a resolver whose subsets are referenced,
 * or defaults whose protocol a router, splitter or L7 intention relies on, stay. Deleting what
 * does not exist is fine.
 */
export function validateConfigDelete(
  kind: ConfigEntryKind,
  name: string,
  view: ConfigEntryView,
): string | undefined {
  if (!view.get(kind, name)) return undefined;
  const broken = brokenDependent(kind, name, view, overlay(view, kind, name, undefined));
  if (broken)
    return `cannot delete ${label(kind, name)}: ${label(broken.entry.Kind, broken.entry.Name)} would become invalid: ${describeProblem(broken.problem, false)}`;
  return undefined;
}
