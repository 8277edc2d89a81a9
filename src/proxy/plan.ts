/**
 * The ProxyPlan: everything one service's proxy needs, and the only thing it is given. The
 * agent compiles it from its watches (roots, the service's leaf, intentions, the upstreams'
 * healthy endpoints, config entries) and hands it over only when complete; the proxy swaps it
 * atomically. Plain frozen data: per-connection code only reads it, and a connection keeps the
 * plan it started with except for authorization, which is re-checked when intentions change.
 */
import { trustDomainOf, type IntentionRule } from '../policy/index.js';

export type Protocol = 'tcp' | 'http' | 'http2' | 'grpc';
export type Balancer = 'round_robin' | 'least_request' | 'random';

export interface TlsMaterial {
  /** PEM: the service's leaf, then the certificates a peer may need to chain it. */
  certChain: string;
  /** PEM private key of the leaf. */
  key: string;
  /** PEM roots that peers' certificates must chain to. */
  roots: string[];
  /** When the leaf expires (ms since the epoch): from then on the proxy fails closed. */
  notAfter: number;
}

export interface InboundPlan {
  /** The public listener other proxies dial (mTLS). */
  bindAddress: string;
  bindPort: number;
  /** The application behind this proxy. */
  localApp: { address: string; port: number };
  protocol: Protocol;
}

export interface Endpoint {
  address: string;
  port: number;
  /** The node it runs on (for logs). */
  node: string;
}

export interface UpstreamPlan {
  /** The destination service name. */
  destination: string;
  bindAddress: string;
  bindPort: number;
  /** The SPIFFE id an endpoint must present; any other identity aborts before a byte is sent. */
  identity: string;
  /** Healthy endpoints: the destination's sidecar proxies' public listeners. */
  endpoints: Endpoint[];
  protocol: Protocol;
  balancer: Balancer;
}

/** Where access-log lines go (Consul's proxy-defaults `AccessLogs.Type` and `Path`). */
export type AccessLogTarget =
  { type: 'stdout' } | { type: 'stderr' } | { type: 'file'; path: string };

/** Consul's proxy-defaults `AccessLogs`: off unless enabled. */
export interface AccessLogPlan {
  enabled: boolean;
  /**
   * Lines for requests and connections refused before they were handled (unparseable heads,
   * malformed HTTP/2 streams): Consul's "listener logs", off with `DisableListenerLogs`.
   */
  listenerLogs: boolean;
  target: AccessLogTarget;
}

export interface ProxyPlan {
  /** Increases with every plan the agent hands over. */
  version: number;
  /** The service this proxy fronts (the destination of inbound intentions). */
  service: string;
  /** The service's own SPIFFE id; its trust domain is the one peers must belong to. */
  identity: string;
  /**
   * Other trust domains whose service ids peers may present: only those of roots the CA lists
   * explicitly during a trust-domain migration (CARoot.ExternalTrustDomain). Never derived by
   * prefix or suffix.
   */
  acceptedTrustDomains?: readonly string[];
  tls: TlsMaterial;
  /** The intentions that can decide traffic to `service`, in evaluation order. */
  intentions: IntentionRule[];
  /** What happens when no intention matches (the ACL default policy). */
  defaultAllow: boolean;
  inbound: InboundPlan;
  upstreams: UpstreamPlan[];
  /**
   * The access log. Absent: every request and connection is logged to the proxy's own access
   * logger (a proxy used on its own, tests); the agent always sets it.
   */
  accessLogs?: AccessLogPlan;
}

/** The same certificates, key and roots (plans are rebuilt often; TLS changes are rare). */
export function sameTls(a: TlsMaterial, b: TlsMaterial): boolean {
  return (
    a.certChain === b.certChain &&
    a.key === b.key &&
    a.roots.length === b.roots.length &&
    a.roots.every((r, i) => r === b.roots[i])
  );
}

const trustCache = new WeakMap<ProxyPlan, readonly string[]>();

/** The trust domains a peer's service id may name: this service's own, plus accepted ones. */
export function trustDomainsOf(plan: ProxyPlan): readonly string[] {
  let t = trustCache.get(plan);
  if (!t) {
    const own = trustDomainOf(plan.identity);
    t = [...(own ? [own] : []), ...(plan.acceptedTrustDomains ?? [])];
    trustCache.set(plan, t);
  }
  return t;
}
