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
