/**
 * SPIFFE identities in Consul's layout:
 *   service  spiffe://<trust-domain>/ns/<ns>/dc/<dc>/svc/<service>
 *   agent    spiffe://<trust-domain>/agent/client/dc/<dc>/id/<node>
 * Parsing is strict: one exact shape, no empty, dot or percent-encoded segments, so two
 * spellings can never name the same workload.
 */
export interface ServiceIdentity {
  kind: 'service';
  trustDomain: string;
  namespace: string;
  datacenter: string;
  service: string;
}

export interface AgentIdentity {
  kind: 'agent';
  trustDomain: string;
  datacenter: string;
  node: string;
}

export type SpiffeIdentity = ServiceIdentity | AgentIdentity;

const SEGMENT = '[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_])?';
const TRUST_DOMAIN = '[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?';
const SERVICE_RE = new RegExp(
  `^spiffe://(${TRUST_DOMAIN})/ns/(${SEGMENT})/dc/(${SEGMENT})/svc/(${SEGMENT})$`,
);
const AGENT_RE = new RegExp(
  `^spiffe://(${TRUST_DOMAIN})/agent/client/dc/(${SEGMENT})/id/(${SEGMENT})$`,
);
const MAX_URI_LENGTH = 2048;

export function serviceSpiffeId(
  trustDomain: string,
  datacenter: string,
  service: string,
  namespace = 'default',
): string {
  return `spiffe://${trustDomain}/ns/${namespace}/dc/${datacenter}/svc/${service}`;
}

export function agentSpiffeId(trustDomain: string, datacenter: string, node: string): string {
  return `spiffe://${trustDomain}/agent/client/dc/${datacenter}/id/${node}`;
}

/** The identity a URI SAN names, or undefined when it is not exactly one of the two shapes. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  if (uri.length > MAX_URI_LENGTH) return undefined;
  const s = SERVICE_RE.exec(uri);
  if (s)
    return {
      kind: 'service',
      trustDomain: s[1]!,
      namespace: s[2]!,
      datacenter: s[3]!,
      service: s[4]!,
    };
  const a = AGENT_RE.exec(uri);
  if (a) return { kind: 'agent', trustDomain: a[1]!, datacenter: a[2]!, node: a[3]! };
  return undefined;
}

/** The only namespace Trellis has (as Consul CE): intentions name services, not namespaces. */
export const DEFAULT_NAMESPACE = 'default';

export type PeerIdCheck = { ok: true; id: ServiceIdentity } | { ok: false; why: string };

/**
 * Whether a peer's URI SAN names a service this mesh may accept: exactly the service shape, in
 * the default namespace, and a trust domain from `trustDomains` compared whole (ours, plus any
 * listed explicitly for a migration; never by prefix, suffix or case folding).
 */
export function checkPeerServiceId(uri: string, trustDomains: readonly string[]): PeerIdCheck {
  const id = parseSpiffeId(uri);
  if (!id)
    return {
      ok: false,
      why: 'not a SPIFFE service id of the form spiffe://<td>/ns/<ns>/dc/<dc>/svc/<name>',
    };
  if (id.kind !== 'service') return { ok: false, why: 'an agent id, not a service id' };
  if (!trustDomains.includes(id.trustDomain))
    return { ok: false, why: `trust domain "${id.trustDomain}" is not this mesh's` };
  if (id.namespace !== DEFAULT_NAMESPACE)
    return { ok: false, why: `namespace "${id.namespace}" does not exist (only "default")` };
  return { ok: true, id };
}

/** The trust domain of a SPIFFE id this code formatted, or undefined when it does not parse. */
export function trustDomainOf(uri: string): string | undefined {
  return parseSpiffeId(uri)?.trustDomain;
}
