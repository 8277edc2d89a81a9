/**
 * Wire types of the config entries, in Consul's CamelCase shape. Declared as type aliases (not
 * interfaces) so every entry is also assignable to the api's open `ConfigEntry` shape
 * ({Kind, Name, [key]: unknown}) that the client sends.
 */
import type { Action, Permission } from '../../policy/intentions.js';

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
