/**
 * Compiles a ProxyPlan from what the agent watches. Pure: the same inputs give the same plan,
 * and a plan is made only when every input is there (the proxy serves nothing until then).
 */
import type { CARoots, Intention, IssuedCert, ServiceEntry } from '../../api/index.js';
import { serviceSpiffeId, type IntentionRule } from '../../policy/index.js';
import type { AccessLogPlan, Balancer, Endpoint, Protocol, ProxyPlan } from '../../proxy/index.js';
import type { TransparentSettings } from '../capture/types.js';

/** A local connect-proxy service, as the proxy needs it. */
export interface SidecarSpec {
  /** The sidecar's service id. */
  id: string;
  /** The service it fronts. */
  destination: string;
  datacenter: string;
  bindAddress: string;
  bindPort: number;
  localApp: { address: string; port: number };
  upstreams: {
    destination: string;
    bindAddress: string;
    bindPort: number;
    datacenter?: string;
  }[];
  /** The token the sidecar was registered with (leaf requests use it). */
  token?: string;
  /** Transparent mode: every mesh service is an upstream, and nftables hands traffic over. */
  transparent?: TransparentSettings;
}

export interface PlanInputs {
  spec: SidecarSpec;
  roots: CARoots;
  leaf: IssuedCert;
  defaultAllow: boolean;
  /** Every intention the agent knows, in evaluation order. */
  intentions: readonly Intention[];
  /** Healthy instances (sidecars) of each upstream destination. */
  endpoints: ReadonlyMap<string, readonly ServiceEntry[]>;
  /** A service's protocol (its service-defaults, else proxy-defaults, else tcp). */
  protocolOf?: (service: string) => Protocol;
  /** How to spread requests over a destination's endpoints (its service-resolver). */
  balancerOf?: (service: string) => Balancer;
  /** The access log (proxy-defaults `AccessLogs`); off when not given. */
  accessLogs?: AccessLogPlan;
}

/**
 * The access log as Consul's global proxy-defaults `AccessLogs` sets it: off unless `Enabled`;
 * `Type` stdout (Consul's default), stderr or file (`Path`); `DisableListenerLogs` leaves out
 * what was refused before it was handled. The API validated the entry when it was written.
 */
export function resolveAccessLogs(
  proxyDefaults: { AccessLogs?: Record<string, unknown> } | null | undefined,
): AccessLogPlan {
  const a = proxyDefaults?.AccessLogs;
  const type = a?.Type;
  const path = a?.Path;
  return {
    enabled: a?.Enabled === true,
    listenerLogs: a?.DisableListenerLogs !== true,
    target:
      type === 'file' && typeof path === 'string' && path !== ''
        ? { type: 'file', path }
        : type === 'stderr'
          ? { type: 'stderr' }
          : { type: 'stdout' },
  };
}

const NO_ACCESS_LOGS: AccessLogPlan = {
  enabled: false,
  listenerLogs: true,
  target: { type: 'stdout' },
};

const PROTOCOLS: readonly Protocol[] = ['tcp', 'http', 'http2', 'grpc'];

/**
 * A service's protocol as Consul resolves it: its service-defaults `Protocol`, else the
 * global proxy-defaults `Config.protocol`, else tcp.
 */
export function resolveProtocol(
  serviceDefaults: { Protocol?: unknown } | null | undefined,
  proxyDefaults: { Config?: { protocol?: unknown } } | null | undefined,
): Protocol {
  for (const p of [serviceDefaults?.Protocol, proxyDefaults?.Config?.protocol]) {
    if (typeof p === 'string' && (PROTOCOLS as readonly string[]).includes(p)) return p as Protocol;
  }
  return 'tcp';
}

/**
 * The balancer a service-resolver asks for (`LoadBalancer.Policy`). Hash-based policies
 * (ring_hash, maglev) are not implemented yet and fall back to round robin.
 */
export function resolveBalancer(
  resolver: { LoadBalancer?: { Policy?: unknown } } | null | undefined,
): Balancer {
  const p = resolver?.LoadBalancer?.Policy;
  return p === 'least_request' || p === 'random' ? p : 'round_robin';
}

export function toRule(i: Intention): IntentionRule {
  return {
    ID: i.ID || `${i.SourceName} => ${i.DestinationName}`,
    SourceName: i.SourceName,
    DestinationName: i.DestinationName,
    ...(i.Action ? { Action: i.Action } : {}),
    ...(i.Permissions?.length ? { Permissions: i.Permissions } : {}),
  };
}

export function endpointsOf(entries: readonly ServiceEntry[]): Endpoint[] {
  return entries.map((e) => ({
    address: e.Service.Address || e.Node.Address,
    port: e.Service.Port,
    node: e.Node.Node,
  }));
}

/**
 * Trust domains other than the cluster's that peers may belong to: those the CA names on roots
 * it still trusts after a trust-domain change (Consul's CARoot.ExternalTrustDomain). Listed
 * whole; nothing is inferred from the roots' certificates.
 */
export function acceptedTrustDomains(roots: CARoots): string[] {
  const out = new Set<string>();
  for (const r of roots.Roots)
    if (r.ExternalTrustDomain && r.ExternalTrustDomain !== roots.TrustDomain)
      out.add(r.ExternalTrustDomain);
  return [...out];
}

export function buildPlan(inputs: PlanInputs, version: number): ProxyPlan {
  const { spec, roots, leaf } = inputs;
  const td = roots.TrustDomain;
  const accepted = acceptedTrustDomains(roots);
  return {
    version,
    service: spec.destination,
    identity: serviceSpiffeId(td, spec.datacenter, spec.destination),
    ...(accepted.length ? { acceptedTrustDomains: accepted } : {}),
    tls: {
      certChain: leaf.CertPEM,
      key: leaf.PrivateKeyPEM,
      roots: roots.Roots.map((r) => r.RootCert),
      notAfter: Date.parse(leaf.ValidBefore),
    },
    // Only intentions that can decide traffic to this service.
    intentions: inputs.intentions
      .filter((i) => i.DestinationName === spec.destination || i.DestinationName === '*')
      .map(toRule),
    defaultAllow: inputs.defaultAllow,
    inbound: {
      bindAddress: spec.bindAddress,
      bindPort: spec.bindPort,
      localApp: spec.localApp,
      protocol: inputs.protocolOf?.(spec.destination) ?? 'tcp',
    },
    upstreams: spec.upstreams.map((u) => ({
      destination: u.destination,
      bindAddress: u.bindAddress,
      bindPort: u.bindPort,
      identity: serviceSpiffeId(td, u.datacenter || spec.datacenter, u.destination),
      endpoints: endpointsOf(inputs.endpoints.get(u.destination) ?? []),
      protocol: inputs.protocolOf?.(u.destination) ?? 'tcp',
      balancer: inputs.balancerOf?.(u.destination) ?? 'round_robin',
    })),
    accessLogs: inputs.accessLogs ?? NO_ACCESS_LOGS,
  };
}
