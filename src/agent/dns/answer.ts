// The agent's DNS answers, as Consul gives them. Pure: everything it knows comes from the DnsView
// and the options (including the clock for the SOA serial).
import { isIPv4, isIPv6 } from 'node:net';
import { serviceTtlFor } from './ttl.js';
import { QCLASS, QTYPE, RCODE, type Query, type RR, type Response } from './wire.js';

export interface DnsInstance {
  node: string;
  nodeAddress: string;
  serviceAddress: string;
  port: number;
  tags: string[];
}

export interface DnsView {
  /**
   * Healthy instances of a service, optionally filtered by tag: none of their checks critical
   * (nor warning, when the view was made with only_passing).
   */
  healthyInstances(service: string, tag?: string): Promise<DnsInstance[]>;
  /** A node's address, undefined when unknown. */
  nodeAddress(node: string): Promise<string | undefined>;
  /** The service's virtual IP (transparent proxying), undefined when none. */
  virtualIp(service: string): Promise<string | undefined>;
  /**
   * A prepared query's result, run by ID or name (templates included), sorted as the query
   * asks; undefined when no query matches. `ttl` is the query's DNS TTL (seconds), if set.
   */
  preparedQuery(name: string): Promise<{ instances: DnsInstance[]; ttl?: number } | undefined>;
}

export interface AnswerOptions {
  /** The DNS domain, "consul." by default. */
  domain: string;
  datacenter: string;
  /** This agent's node name. */
  nodeName: string;
  /** TTL (seconds) of service and node records. Consul's default is 0. */
  ttl: number;
  /** TTL (seconds) of node records (`<node>.node`, NS, `ns.`); default `ttl`. */
  nodeTtl?: number;
  /** Service TTLs (seconds) by name, `prefix*` or `*` (Consul's service_ttl); default `ttl`. */
  serviceTtls?: Readonly<Record<string, number>>;
  /**
   * When it returns true, A queries for `<svc>.service` answer the service's virtual IP (one
   * record) if it has one, so connections go through the transparent proxy; SRV answers keep
   * the real instances. Default: never.
   */
  virtualIpsFor?: () => boolean;
  /** This agent's address: the A (or AAAA) of `ns.<domain>` in NS answers. */
  agentAddress?: string;
  /** Milliseconds since the epoch, for the SOA serial. */
  now?: () => number;
  /** The SOA minimum (negative-caching TTL); Consul's default is 0. */
  negativeTtl?: number;
}

const TYPE_LABELS = new Set(['service', 'node', 'virtual', 'query']);

function fqdn(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : n + '.';
}

function domainLabels(domain: string): string[] {
  return fqdn(domain)
    .split('.')
    .filter((l) => l.length > 0);
}

export function soaRecord(opts: AnswerOptions): RR {
  const domain = fqdn(opts.domain);
  const now = opts.now ? opts.now() : 0;
  return {
    name: domain,
    type: 'SOA',
    ttl: 0,
    mname: `ns.${domain}`,
    rname: `hostmaster.${domain}`,
    serial: Math.floor(now / 1000) >>> 0,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: opts.negativeTtl ?? 0,
  };
}

/** A/AAAA (or CNAME for a host name) for `address`, filtered by the query type. */
function addressRecords(name: string, address: string, qtype: number, ttl: number): RR[] {
  const wantA = qtype === QTYPE.A || qtype === QTYPE.ANY;
  const wantAAAA = qtype === QTYPE.AAAA || qtype === QTYPE.ANY;
  if (isIPv4(address)) return wantA ? [{ name, type: 'A', ttl, address }] : [];
  if (isIPv6(address)) return wantAAAA ? [{ name, type: 'AAAA', ttl, address }] : [];
  if (address && (wantA || wantAAAA || qtype === QTYPE.CNAME))
    return [{ name, type: 'CNAME', ttl, target: fqdn(address) }];
  return [];
}

function dedupe(records: RR[]): RR[] {
  const seen = new Set<string>();
  return records.filter((r) => {
    const key = JSON.stringify(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Whether `q` names something under the domain (else it is for the recursors, or refused). */
export function inMeshDomain(q: Query, domain: string): boolean {
  const d = domainLabels(domain);
  const labels = q.labels;
  return labels.length >= d.length && d.every((l, i) => labels[labels.length - d.length + i] === l);
}

export async function answer(q: Query, view: DnsView, opts: AnswerOptions): Promise<Response> {
  const response = (rcode: number, answers: RR[] = [], additional: RR[] = []): Response => ({
    rcode,
    authoritative: true,
    answers,
    // Negative answers (NXDOMAIN, or NOERROR with no data) carry the SOA, as Consul does.
    authority:
      rcode === RCODE.NXDOMAIN || (rcode === RCODE.NOERROR && answers.length === 0)
        ? [soaRecord(opts)]
        : [],
    additional,
  });
  if (q.opcode !== 0)
    return {
      rcode: RCODE.NOTIMP,
      authoritative: false,
      answers: [],
      authority: [],
      additional: [],
    };

  const domain = domainLabels(opts.domain);
  const labels = q.labels;
  if (!inMeshDomain(q, opts.domain) || (q.qclass !== QCLASS.IN && q.qclass !== QCLASS.ANY)) {
    // Names outside the domain reach here only without recursors (server.ts forwards them).
    return {
      rcode: RCODE.REFUSED,
      authoritative: false,
      answers: [],
      authority: [],
      additional: [],
    };
  }
  const dom = fqdn(opts.domain);
  const rest = labels.slice(0, labels.length - domain.length);
  const ttl = opts.nodeTtl ?? opts.ttl;
  const { qtype } = q;

  // The domain apex: SOA and NS.
  if (rest.length === 0) {
    const answers: RR[] = [];
    const additional: RR[] = [];
    if (qtype === QTYPE.SOA || qtype === QTYPE.ANY) answers.push(soaRecord(opts));
    if (qtype === QTYPE.NS || qtype === QTYPE.ANY) {
      answers.push({ name: dom, type: 'NS', ttl, target: `ns.${dom}` });
      if (opts.agentAddress)
        additional.push(...addressRecords(`ns.${dom}`, opts.agentAddress, QTYPE.ANY, ttl));
    }
    return response(RCODE.NOERROR, answers, additional);
  }
  // ns.<domain>: this agent.
  if (rest.length === 1 && rest[0] === 'ns' && opts.agentAddress) {
    return response(RCODE.NOERROR, addressRecords(q.name, opts.agentAddress, qtype, ttl));
  }

  // <...>.<kind>[.<dc>].<domain>
  let kindAt = rest.length - 1;
  if (!TYPE_LABELS.has(rest[kindAt]) && rest.length >= 2 && TYPE_LABELS.has(rest[kindAt - 1])) {
    // A datacenter label. Only this agent's datacenter is known (no WAN federation).
    if (rest[kindAt] !== opts.datacenter.toLowerCase()) return response(RCODE.NXDOMAIN);
    kindAt -= 1;
  }
  const kind = rest[kindAt];
  const parts = rest.slice(0, kindAt);
  if (!TYPE_LABELS.has(kind) || parts.length === 0) return response(RCODE.NXDOMAIN);

  if (kind === 'node') {
    if (parts.length !== 1) return response(RCODE.NXDOMAIN);
    const address = await view.nodeAddress(parts[0]);
    if (address === undefined) return response(RCODE.NXDOMAIN);
    return response(RCODE.NOERROR, addressRecords(q.name, address, qtype, ttl));
  }

  if (kind === 'virtual') {
    if (parts.length !== 1) return response(RCODE.NXDOMAIN);
    const vip = await view.virtualIp(parts[0]);
    if (vip === undefined) return response(RCODE.NXDOMAIN);
    const vipTtl = serviceTtlFor(opts.serviceTtls, parts[0], opts.ttl);
    return response(RCODE.NOERROR, addressRecords(q.name, vip, qtype, vipTtl));
  }

  if (kind === 'query') {
    // <query>.query: a query ID or name; names may hold dots, so every label before "query".
    const result = await view.preparedQuery(parts.join('.'));
    if (!result || result.instances.length === 0) return response(RCODE.NXDOMAIN);
    return instanceRecords(q, result.instances, result.ttl ?? opts.ttl, opts, dom, response);
  }

  // service: <svc>, <tag>.<svc>, or RFC 2782 _<svc>._<tag|tcp>
  let service: string;
  let tag: string | undefined;
  if (parts.length === 1) {
    if (parts[0].startsWith('_')) return response(RCODE.NXDOMAIN);
    service = parts[0];
  } else if (parts.length === 2) {
    if (parts[0].startsWith('_') && parts[1].startsWith('_')) {
      service = parts[0].slice(1);
      const t = parts[1].slice(1);
      if (t !== 'tcp') tag = t;
    } else {
      tag = parts[0];
      service = parts[1];
    }
  } else {
    return response(RCODE.NXDOMAIN);
  }
  if (!service || tag === '') return response(RCODE.NXDOMAIN);
  const svcTtl = serviceTtlFor(opts.serviceTtls, service, opts.ttl);
  // A transparently proxying host reaches services at their virtual IP, and only there: AAAA
  // (a VIP is IPv4) then gets no data rather than the instances' real addresses.
  if (qtype !== QTYPE.SRV && tag === undefined && opts.virtualIpsFor?.()) {
    const vip = await view.virtualIp(service);
    if (vip !== undefined)
      return response(RCODE.NOERROR, addressRecords(q.name, vip, qtype, svcTtl));
  }
  const instances = await view.healthyInstances(service, tag);
  if (instances.length === 0) return response(RCODE.NXDOMAIN);
  return instanceRecords(q, instances, svcTtl, opts, dom, response);
}

/** SRV (with the addresses as additional records) or A/AAAA answers for service instances. */
function instanceRecords(
  q: Query,
  instances: DnsInstance[],
  ttl: number,
  opts: AnswerOptions,
  dom: string,
  response: (rcode: number, answers?: RR[], additional?: RR[]) => Response,
): Response {
  if (q.qtype === QTYPE.SRV) {
    const answers: RR[] = [];
    const additional: RR[] = [];
    for (const inst of instances) {
      const target = `${inst.node.toLowerCase()}.node.${opts.datacenter.toLowerCase()}.${dom}`;
      answers.push({
        name: q.name,
        type: 'SRV',
        ttl,
        priority: 1,
        weight: 1,
        port: inst.port,
        target,
      });
      const address = inst.serviceAddress || inst.nodeAddress;
      if (isIPv4(address) || isIPv6(address))
        additional.push(...addressRecords(target, address, QTYPE.ANY, ttl));
    }
    return response(RCODE.NOERROR, dedupe(answers), dedupe(additional));
  }
  const answers: RR[] = [];
  for (const inst of instances) {
    answers.push(...addressRecords(q.name, inst.serviceAddress || inst.nodeAddress, q.qtype, ttl));
  }
  return response(RCODE.NOERROR, dedupe(answers));
}
