/**
 * The nftables ruleset the agent owns: exactly one table, `inet trellis`, rendered from a
 * RedirectPlan. Pure: no I/O. The text is deterministic (everything sorted), so rendering the
 * same plan twice, in any input order, gives the same bytes.
 *
 * Applying `wholeFile(plan)` with `nft -f` is one kernel transaction: it creates the table (so
 * the delete cannot fail), deletes it, and recreates it in full. All or nothing, idempotent.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { badRequest } from '../../core/index.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'trellis';

export interface RedirectPlan {
  /** The agent's own uid: its (the proxies') traffic is never redirected, so no loops. */
  proxyUid: number;
  /** Outbound capture per captured service user: connections from that uid to a mesh address:port go to a local outbound listener port. */
  outbound: {
    /** Whose connections: a uid, or (instead) a cgroup v2 path below /sys/fs/cgroup. */
    uid?: number;
    cgroup?: string;
    targets: { address: string; port: number; toPort: number }[];
    /** Virtual IPs: every TCP port of the address goes to `toPort` (a VIP is one service). */
    vips?: { address: string; toPort: number }[];
    /** Destination ports never captured for this uid (its service's exclusions). */
    excludePorts?: number[];
    /** Destination networks never captured for this uid. */
    excludeCidrs?: string[];
  }[];
  /** Inbound capture: connections from the network to a captured service's port go to its proxy's public listener. */
  inbound: { port: number; toPort: number }[];
  /** Never redirected. Inbound port 22 (SSH) is always excluded unless `redirectSsh` is true. */
  exclude: {
    inboundPorts: number[];
    outboundPorts: number[];
    outboundCidrs: string[];
    uids: number[];
  };
  redirectSsh?: boolean;
  /** Optional: DNS queries (udp+tcp dport 53) from captured uids go to 127.0.0.1:<port> (the agent's DNS). */
  dns?: { port: number };
}

const SSH_PORT = 22;

function fail(field: string, message: string): never {
  throw badRequest(`${field}: ${message}`, field);
}

function checkPort(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    fail(field, `${JSON.stringify(v)} is not a port (an integer 1-65535)`);
  return v;
}

function checkUid(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    fail(field, `${JSON.stringify(v)} is not a uid (an integer >= 0)`);
  return v;
}

/** A cgroup v2 path below /sys/fs/cgroup, safe to put in quotes in the nft file. */
function checkCgroup(field: string, v: unknown): string {
  if (
    typeof v !== 'string' ||
    !/^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.@:-]+(?:\/[A-Za-z0-9_.@:-]+)*$/.test(v)
  )
    fail(field, `${JSON.stringify(v)} is not a cgroup path (like "system.slice/web.service")`);
  return v;
}

function checkArray(field: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) fail(field, 'must be an array');
  return v;
}

/** A parsed CIDR, canonical: host bits cleared, lowercase. */
interface Cidr {
  family: 4 | 6;
  text: string;
  sortKey: string;
}

function v4ToBytes(a: string): number[] {
  return a.split('.').map((x) => Number(x));
}

/** Expands an IPv6 address (valid per isIP) to 16 bytes. */
function v6ToBytes(a: string): number[] {
  let s = a.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = v4ToBytes(s.slice(lastColon + 1));
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const hs = head ? head.split(':') : [];
  const rs = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups =
    rest === undefined ? hs : [...hs, ...Array(8 - hs.length - rs.length).fill('0'), ...rs];
  const bytes: number[] = [];
  for (const g of groups) {
    const n = parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function bytesToV6(b: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function sortKeyOf(family: 4 | 6, bytes: number[], suffix = ''): string {
  return `${family}:${bytes.map((x) => x.toString(16).padStart(2, '0')).join('')}${suffix}`;
}

function checkAddress(field: string, v: unknown): { family: 4 | 6; text: string; sortKey: string } {
  if (typeof v !== 'string' || isIP(v) === 0 || v.includes('%'))
    fail(field, `${JSON.stringify(v)} is not an IP address`);
  if (isIP(v) === 4) return { family: 4, text: v, sortKey: sortKeyOf(4, v4ToBytes(v)) };
  const bytes = v6ToBytes(v);
  return { family: 6, text: bytesToV6(bytes), sortKey: sortKeyOf(6, bytes) };
}

function checkCidr(field: string, v: unknown): Cidr {
  const bad = (): never => fail(field, `${JSON.stringify(v)} is not a CIDR (address/prefix)`);
  if (typeof v !== 'string') return bad();
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0 || addr.includes('%')) return bad();
  const max = fam === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : v.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return bad();
  const prefix = Number(prefixText);
  if (prefix > max) return bad();
  const bytes = fam === 4 ? v4ToBytes(addr) : v6ToBytes(addr);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  const base = fam === 4 ? bytes.join('.') : bytesToV6(bytes);
  return {
    family: fam as 4 | 6,
    text: `${base}/${prefix}`,
    sortKey: sortKeyOf(fam as 4 | 6, bytes, `/${String(prefix).padStart(3, '0')}`),
  };
}

/** The CIDRs of one family, deduplicated and sorted by address then prefix. */
function sortedCidrs(cidrs: readonly Cidr[], fam: 4 | 6): string[] {
  const m = new Map<string, string>();
  for (const c of cidrs) if (c.family === fam) m.set(c.sortKey, c.text);
  return [...m.keys()].sort().map((k) => m.get(k) as string);
}

interface Normalized {
  proxyUid: number;
  outbound: {
    /** uid, or undefined for a cgroup entry. */
    uid: number | undefined;
    /** Map name suffix: `u<uid>` or `c<hash of the cgroup path>`. */
    key: string;
    /** The nft expression that selects the connections' owner. */
    match: string;
    sortKey: string;
    v4: string[];
    v6: string[];
    vip4: string[];
    vip6: string[];
    exPorts: number[];
    exCidr4: string[];
    exCidr6: string[];
  }[];
  inbound: string[];
  inboundExcl: number[];
  outboundPortsExcl: number[];
  cidr4: string[];
  cidr6: string[];
  uidsExcl: number[];
  dnsPort: number | undefined;
}

const byNumber = (a: number, b: number): number => a - b;
const byKey = (x: { key: string }, y: { key: string }): number =>
  x.key < y.key ? -1 : x.key > y.key ? 1 : 0;
const uniqSorted = (xs: number[]): number[] => [...new Set(xs)].sort(byNumber);

/** Validates a plan; throws a MeshError (kind user) naming the bad field. */
export function validatePlan(plan: RedirectPlan): void {
  normalize(plan);
}

function normalize(plan: RedirectPlan): Normalized {
  if (plan === null || typeof plan !== 'object') fail('plan', 'must be an object');
  const proxyUid = checkUid('proxyUid', plan.proxyUid);

  const outUids = new Set<string>();
  const outbound = checkArray('outbound', plan.outbound).map((raw, i) => {
    const o = raw as RedirectPlan['outbound'][number];
    const f = `outbound[${i}]`;
    if (o === null || typeof o !== 'object') fail(f, 'must be an object');
    if ((o.uid === undefined) === (o.cgroup === undefined))
      fail(f, 'needs exactly one of uid and cgroup');
    let uid: number | undefined;
    let key: string;
    let match: string;
    let sortKey: string;
    if (o.cgroup !== undefined) {
      const path = checkCgroup(`${f}.cgroup`, o.cgroup);
      key = `c${createHash('sha256').update(path).digest('hex').slice(0, 10)}`;
      match = `socket cgroupv2 level ${path.split('/').length} "${path}"`;
      sortKey = `c ${path}`;
    } else {
      uid = checkUid(`${f}.uid`, o.uid);
      if (uid === proxyUid) fail(`${f}.uid`, `${uid} is the proxy uid; capturing it would loop`);
      key = `u${uid}`;
      match = `meta skuid ${uid}`;
      sortKey = `u ${String(uid).padStart(10, '0')}`;
    }
    if (outUids.has(key)) fail(f, `${o.cgroup ?? uid} appears more than once`);
    outUids.add(key);
    const seen = new Map<string, number>();
    const elems: { family: 4 | 6; key: string; text: string }[] = [];
    checkArray(`${f}.targets`, o.targets).forEach((rt, j) => {
      const t = rt as RedirectPlan['outbound'][number]['targets'][number];
      const tf = `${f}.targets[${j}]`;
      if (t === null || typeof t !== 'object') fail(tf, 'must be an object');
      const a = checkAddress(`${tf}.address`, t.address);
      const port = checkPort(`${tf}.port`, t.port);
      const toPort = checkPort(`${tf}.toPort`, t.toPort);
      const key = `${a.sortKey} ${String(port).padStart(5, '0')}`;
      const prev = seen.get(key);
      if (prev !== undefined && prev !== toPort)
        fail(tf, `${a.text}:${port} is already mapped to ${prev}, cannot also map it to ${toPort}`);
      if (prev !== undefined) return;
      seen.set(key, toPort);
      elems.push({ family: a.family, key, text: `${a.text} . ${port} : ${toPort}` });
    });
    elems.sort(byKey);
    const vips = new Map<string, number>();
    const vipElems: { family: 4 | 6; key: string; text: string }[] = [];
    if (o.vips !== undefined)
      checkArray(`${f}.vips`, o.vips).forEach((rv, j) => {
        const v = rv as NonNullable<RedirectPlan['outbound'][number]['vips']>[number];
        const vf = `${f}.vips[${j}]`;
        if (v === null || typeof v !== 'object') fail(vf, 'must be an object');
        const a = checkAddress(`${vf}.address`, v.address);
        const toPort = checkPort(`${vf}.toPort`, v.toPort);
        const prev = vips.get(a.sortKey);
        if (prev !== undefined && prev !== toPort)
          fail(vf, `${a.text} is already mapped to ${prev}, cannot also map it to ${toPort}`);
        if (prev !== undefined) return;
        vips.set(a.sortKey, toPort);
        vipElems.push({ family: a.family, key: a.sortKey, text: `${a.text} : ${toPort}` });
      });
    vipElems.sort(byKey);
    const of = (xs: typeof elems, fam: 4 | 6): string[] =>
      xs.filter((e) => e.family === fam).map((e) => e.text);
    const exPorts =
      o.excludePorts === undefined
        ? []
        : checkArray(`${f}.excludePorts`, o.excludePorts).map((p, j) =>
            checkPort(`${f}.excludePorts[${j}]`, p),
          );
    const exCidrs =
      o.excludeCidrs === undefined
        ? []
        : checkArray(`${f}.excludeCidrs`, o.excludeCidrs).map((c, j) =>
            checkCidr(`${f}.excludeCidrs[${j}]`, c),
          );
    return {
      uid,
      key,
      match,
      sortKey,
      v4: of(elems, 4),
      v6: of(elems, 6),
      vip4: of(vipElems, 4),
      vip6: of(vipElems, 6),
      exPorts: uniqSorted(exPorts),
      exCidr4: sortedCidrs(exCidrs, 4),
      exCidr6: sortedCidrs(exCidrs, 6),
    };
  });
  outbound.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));

  const inMap = new Map<number, number>();
  checkArray('inbound', plan.inbound).forEach((raw, i) => {
    const r = raw as RedirectPlan['inbound'][number];
    if (r === null || typeof r !== 'object') fail(`inbound[${i}]`, 'must be an object');
    const port = checkPort(`inbound[${i}].port`, r.port);
    const toPort = checkPort(`inbound[${i}].toPort`, r.toPort);
    const prev = inMap.get(port);
    if (prev !== undefined && prev !== toPort)
      fail(
        `inbound[${i}].port`,
        `${port} is already redirected to ${prev}, cannot also redirect it to ${toPort}`,
      );
    inMap.set(port, toPort);
  });

  const ex = plan.exclude;
  if (ex === null || typeof ex !== 'object') fail('exclude', 'must be an object');
  const inboundExcl = checkArray('exclude.inboundPorts', ex.inboundPorts).map((p, i) =>
    checkPort(`exclude.inboundPorts[${i}]`, p),
  );
  if (plan.redirectSsh !== undefined && typeof plan.redirectSsh !== 'boolean')
    fail('redirectSsh', 'must be a boolean');
  if (!plan.redirectSsh) inboundExcl.push(SSH_PORT);
  const outboundPortsExcl = checkArray('exclude.outboundPorts', ex.outboundPorts).map((p, i) =>
    checkPort(`exclude.outboundPorts[${i}]`, p),
  );
  const cidrs = checkArray('exclude.outboundCidrs', ex.outboundCidrs).map((c, i) =>
    checkCidr(`exclude.outboundCidrs[${i}]`, c),
  );
  const cidrSorted = (fam: 4 | 6): string[] => sortedCidrs(cidrs, fam);
  const uidsExcl = checkArray('exclude.uids', ex.uids).map((u, i) =>
    checkUid(`exclude.uids[${i}]`, u),
  );

  let dnsPort: number | undefined;
  if (plan.dns !== undefined) {
    if (plan.dns === null || typeof plan.dns !== 'object') fail('dns', 'must be an object');
    dnsPort = checkPort('dns.port', plan.dns.port);
  }

  return {
    proxyUid,
    outbound,
    inbound: [...inMap.keys()].sort(byNumber).map((p) => `${p} : ${inMap.get(p)}`),
    inboundExcl: uniqSorted(inboundExcl),
    outboundPortsExcl: uniqSorted(outboundPortsExcl),
    cidr4: cidrSorted(4),
    cidr6: cidrSorted(6),
    uidsExcl: uniqSorted(uidsExcl.filter((u) => u !== proxyUid)),
    dnsPort,
  };
}

function set(xs: (string | number)[]): string {
  return xs.length === 1 ? String(xs[0]) : `{ ${xs.join(', ')} }`;
}

function map(name: string, type: string, elements: string[]): string[] {
  const lines = [`\tmap ${name} {`, `\t\ttype ${type}`];
  if (elements.length) lines.push(`\t\telements = { ${elements.join(',\n\t\t\t     ')} }`);
  lines.push('\t}');
  return lines;
}

/**
 * The nft text of the whole `inet trellis` table (the definition only: see wholeFile for the
 * atomic replace). Validates the plan first.
 */
export function renderRuleset(plan: RedirectPlan): string {
  const n = normalize(plan);
  const out: string[] = [`table ${TABLE_FAMILY} ${TABLE_NAME} {`];

  for (const o of n.outbound) {
    out.push(...map(`out4_${o.key}`, 'ipv4_addr . inet_service : inet_service', o.v4));
    out.push(...map(`out6_${o.key}`, 'ipv6_addr . inet_service : inet_service', o.v6));
    if (o.vip4.length) out.push(...map(`vip4_${o.key}`, 'ipv4_addr : inet_service', o.vip4));
    if (o.vip6.length) out.push(...map(`vip6_${o.key}`, 'ipv6_addr : inet_service', o.vip6));
  }
  out.push(...map('in_ports', 'inet_service : inet_service', n.inbound));

  // Locally generated connections.
  out.push('\tchain output {', '\t\ttype nat hook output priority -100; policy accept;');
  out.push(`\t\tmeta skuid ${n.proxyUid} return`);
  if (n.uidsExcl.length) out.push(`\t\tmeta skuid ${set(n.uidsExcl)} return`);
  // DNS goes to the agent before the port/CIDR exclusions: the resolver is often on loopback or
  // in an excluded network, and the queries must still be captured.
  if (n.dnsPort !== undefined && n.outbound.length) {
    const uids = n.outbound.flatMap((o) => (o.uid === undefined ? [] : [o.uid]));
    const selectors = [
      ...(uids.length ? [`meta skuid ${set(uids)}`] : []),
      ...n.outbound.filter((o) => o.uid === undefined).map((o) => o.match),
    ];
    for (const sel of selectors) {
      out.push(`\t\t${sel} udp dport 53 dnat ip to 127.0.0.1:${n.dnsPort}`);
      out.push(`\t\t${sel} tcp dport 53 dnat ip to 127.0.0.1:${n.dnsPort}`);
    }
  }
  if (n.outboundPortsExcl.length) out.push(`\t\ttcp dport ${set(n.outboundPortsExcl)} return`);
  if (n.cidr4.length) out.push(`\t\tip daddr ${set(n.cidr4)} return`);
  if (n.cidr6.length) out.push(`\t\tip6 daddr ${set(n.cidr6)} return`);
  for (const o of n.outbound) {
    // This uid's own exclusions (its service's transparent_proxy settings) come first.
    if (o.exPorts.length) out.push(`\t\t${o.match} tcp dport ${set(o.exPorts)} return`);
    if (o.exCidr4.length) out.push(`\t\t${o.match} ip daddr ${set(o.exCidr4)} return`);
    if (o.exCidr6.length) out.push(`\t\t${o.match} ip6 daddr ${set(o.exCidr6)} return`);
    if (o.v4.length)
      out.push(
        `\t\t${o.match} meta l4proto tcp redirect to : ip daddr . tcp dport map @out4_${o.key}`,
      );
    if (o.v6.length)
      out.push(
        `\t\t${o.match} meta l4proto tcp redirect to : ip6 daddr . tcp dport map @out6_${o.key}`,
      );
    if (o.vip4.length)
      out.push(`\t\t${o.match} meta l4proto tcp redirect to : ip daddr map @vip4_${o.key}`);
    if (o.vip6.length)
      out.push(`\t\t${o.match} meta l4proto tcp redirect to : ip6 daddr map @vip6_${o.key}`);
  }
  out.push('\t}');

  // Connections arriving from the network.
  out.push('\tchain prerouting {', '\t\ttype nat hook prerouting priority -100; policy accept;');
  out.push('\t\tiifname "lo" return');
  if (n.inboundExcl.length) out.push(`\t\ttcp dport ${set(n.inboundExcl)} return`);
  if (n.inbound.length) out.push('\t\tmeta l4proto tcp redirect to : tcp dport map @in_ports');
  out.push('\t}');

  out.push('}');
  return out.join('\n') + '\n';
}

/** Removes the table whether or not it exists, in one transaction. */
export function removeFile(): string {
  return `table ${TABLE_FAMILY} ${TABLE_NAME} {}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n`;
}

/** The atomic replace: ensure, delete, recreate the table, as one `nft -f` transaction. */
export function wholeFile(plan: RedirectPlan): string {
  const body = renderRuleset(plan);
  return removeFile() + body;
}
