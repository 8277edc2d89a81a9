/**
 * The wire contract: Consul-compatible shapes of every HTTP resource Trellis serves, with
 * Consul's PascalCase field names. Pure types; no I/O. Field meanings follow Consul's API docs.
 */

export type HealthStatus = 'passing' | 'warning' | 'critical';

export interface Node {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  /** Node tagged addresses are plain strings (lan, wan, lan_ipv4, ...). */
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface ServiceAddress {
  Address: string;
  Port: number;
}

export interface Weights {
  Passing: number;
  Warning: number;
}

export interface Upstream {
  DestinationType?: string;
  DestinationNamespace?: string;
  DestinationName: string;
  Datacenter?: string;
  LocalBindAddress?: string;
  LocalBindPort?: number;
  LocalBindSocketPath?: string;
  Config?: Record<string, unknown>;
}

export interface ConnectProxyConfig {
  DestinationServiceName: string;
  DestinationServiceID?: string;
  LocalServiceAddress?: string;
  LocalServicePort?: number;
  Mode?: string;
  TransparentProxy?: TransparentProxyConfig;
  Config?: Record<string, unknown>;
  Upstreams?: Upstream[];
}

/**
 * Consul's two transparent-proxy fields plus Trellis' capture settings: whose traffic the
 * agent's nftables rules hand to this sidecar, and what they leave alone.
 */
export interface TransparentProxyConfig {
  OutboundListenerPort?: number;
  DialedDirectly?: boolean;
  /** The unix user (name or uid) whose outbound connections to mesh services are captured. */
  CaptureUser?: string;
  /**
   * Or: the cgroup (v2, relative to /sys/fs/cgroup, e.g. "system.slice/web.service") whose
   * processes' outbound connections are captured.
   */
  CaptureCgroup?: string;
  /** Inbound ports of the service that are not redirected to the public listener. */
  ExcludeInboundPorts?: number[];
  /** Outbound destination ports that are never captured. */
  ExcludeOutboundPorts?: number[];
  /** Outbound destination networks that are never captured. */
  ExcludeOutboundCIDRs?: string[];
  /** Users (uids) whose traffic is never captured on this host. */
  ExcludeUIDs?: number[];
  /** Send the captured user's DNS queries (port 53) to the agent's DNS. */
  RedirectDNS?: boolean;
}

export interface ServiceConnect {
  Native?: boolean;
  SidecarService?: ServiceRegistration;
}

/** A service instance as the agent and health endpoints show it (Consul's AgentService). */
export interface AgentService {
  Kind?: string;
  ID: string;
  Service: string;
  Tags: string[];
  Meta: Record<string, string>;
  Port: number;
  Address: string;
  TaggedAddresses?: Record<string, ServiceAddress>;
  Weights: Weights;
  EnableTagOverride: boolean;
  Proxy?: ConnectProxyConfig;
  Connect?: ServiceConnect;
  CreateIndex?: number;
  ModifyIndex?: number;
  Datacenter?: string;
}

export interface CheckDefinition {
  HTTP?: string;
  Header?: Record<string, string[]>;
  Method?: string;
  Body?: string;
  TLSServerName?: string;
  TLSSkipVerify?: boolean;
  TCP?: string;
  GRPC?: string;
  GRPCUseTLS?: boolean;
  Interval?: string;
  Timeout?: string;
  DeregisterCriticalServiceAfter?: string;
}

/** The keys of CheckDefinition, for code that copies or canonicalizes one. */
export const CHECK_DEFINITION_FIELDS = [
  'HTTP',
  'Header',
  'Method',
  'Body',
  'TLSServerName',
  'TLSSkipVerify',
  'TCP',
  'GRPC',
  'GRPCUseTLS',
  'Interval',
  'Timeout',
  'DeregisterCriticalServiceAfter',
] as const satisfies readonly (keyof CheckDefinition)[];

export interface HealthCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: HealthStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
  Interval: string;
  Timeout: string;
  ExposedPort: number;
  Definition: CheckDefinition;
  CreateIndex: number;
  ModifyIndex: number;
}

/**
 * A check as an agent runs it (Consul's CheckType): exactly one of ScriptArgs, HTTP, TCP, GRPC,
 * TTL; Interval required except for TTL. Durations are Go strings ("10s").
 */
export interface CheckType {
  CheckID?: string;
  Name?: string;
  Notes?: string;
  ScriptArgs?: string[];
  Interval?: string;
  Timeout?: string;
  TTL?: string;
  HTTP?: string;
  Header?: Record<string, string[]>;
  Method?: string;
  Body?: string;
  DisableRedirects?: boolean;
  TCP?: string;
  GRPC?: string;
  GRPCUseTLS?: boolean;
  TLSServerName?: string;
  TLSSkipVerify?: boolean;
  OutputMaxSize?: number;
  Status?: HealthStatus;
  SuccessBeforePassing?: number;
  FailuresBeforeWarning?: number;
  FailuresBeforeCritical?: number;
  DeregisterCriticalServiceAfter?: string;
  /**
   * An alias check: mirrors the health of this local service id. Only the agent sets it (on a
   * sidecar proxy); request bodies cannot, as Trellis has no alias checks of its own.
   */
  AliasService?: string;
}

/** Body of PUT /v1/agent/check/register. */
export interface CheckRegistration extends CheckType {
  ID?: string;
  Name: string;
  ServiceID?: string;
}

/** Body of PUT /v1/agent/service/register, and what a service definition file becomes. */
export interface ServiceRegistration {
  Kind?: string;
  ID?: string;
  Name: string;
  Tags?: string[];
  Port?: number;
  Address?: string;
  TaggedAddresses?: Record<string, ServiceAddress>;
  EnableTagOverride?: boolean;
  Meta?: Record<string, string>;
  Weights?: Weights;
  Check?: CheckType;
  Checks?: CheckType[];
  Proxy?: ConnectProxyConfig;
  Connect?: ServiceConnect;
}

/** One element of GET /v1/catalog/service/:name. */
export interface CatalogService {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  NodeMeta: Record<string, string>;
  ServiceKind: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  ServiceAddress: string;
  ServiceTaggedAddresses: Record<string, ServiceAddress>;
  ServiceWeights: Weights;
  ServiceMeta: Record<string, string>;
  ServicePort: number;
  ServiceEnableTagOverride: boolean;
  ServiceProxy: ConnectProxyConfig | Record<string, never>;
  ServiceConnect: ServiceConnect;
  CreateIndex: number;
  ModifyIndex: number;
}

/** One element of GET /v1/health/service/:name. */
export interface ServiceEntry {
  Node: Node;
  Service: AgentService;
  Checks: HealthCheck[];
}

/** Body of PUT /v1/catalog/register. */
export interface CatalogRegistration {
  ID?: string;
  Node: string;
  Address: string;
  Datacenter?: string;
  TaggedAddresses?: Record<string, string>;
  NodeMeta?: Record<string, string>;
  Service?: Partial<AgentService> & { Service: string };
  Check?: CatalogCheck;
  Checks?: CatalogCheck[];
  SkipNodeUpdate?: boolean;
}

export interface CatalogCheck {
  Node?: string;
  CheckID?: string;
  Name: string;
  Notes?: string;
  Status?: HealthStatus;
  Output?: string;
  ServiceID?: string;
  Type?: string;
  Interval?: string;
  Timeout?: string;
  Definition?: CheckDefinition;
}

/** Body of PUT /v1/catalog/deregister. */
export interface CatalogDeregistration {
  Node: string;
  Datacenter?: string;
  ServiceID?: string;
  CheckID?: string;
}

export interface KVPair {
  Key: string;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Flags: number;
  /** base64, or null for an empty value. */
  Value: string | null;
  Session?: string;
}

export interface Session {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: 'release' | 'delete';
  TTL: string;
  NodeChecks: string[] | null;
  ServiceChecks: { ID: string; Namespace?: string }[] | null;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Body of PUT /v1/session/create. */
export interface SessionRequest {
  Name?: string;
  Node?: string;
  LockDelay?: string | number;
  Behavior?: 'release' | 'delete';
  TTL?: string;
  NodeChecks?: string[];
  ServiceChecks?: { ID: string }[];
  /** Deprecated alias for NodeChecks. */
  Checks?: string[];
}

export interface Member {
  Name: string;
  Addr: string;
  Port: number;
  Tags: Record<string, string>;
  /** 1 alive, 3 left, 4 failed. */
  Status: number;
  ProtocolMin: number;
  ProtocolMax: number;
  ProtocolCur: number;
  DelegateMin: number;
  DelegateMax: number;
  DelegateCur: number;
}

/** Body of PUT /v1/internal/trellis/heartbeat: an agent says its node is alive. */
export interface Heartbeat {
  Node: string;
  Address: string;
  /** How long the node stays alive without another heartbeat, Go duration. */
  TTL: string;
  Datacenter?: string;
}

/** Reserved check ids, as Consul names them. */
export const SERF_CHECK_ID = 'serfHealth';
export const SERF_CHECK_NAME = 'Serf Health Status';
export const NODE_MAINT_CHECK_ID = '_node_maintenance';
export const SERVICE_MAINT_PREFIX = '_service_maintenance:';
