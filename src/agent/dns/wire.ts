// DNS wire format (RFC 1035; SRV RFC 2782; AAAA RFC 3596; OPT RFC 6891), pure: no I/O.
// parseQuery reads one query and rejects anything malformed with DnsFormatError; it never loops
// unboundedly (compression pointers must point strictly backwards, and jumps are capped).
// encodeResponse writes a response with name compression and truncates to maxSize.
import { isIPv4, isIPv6 } from 'node:net';

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const QCLASS = { IN: 1, ANY: 255 } as const;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Thrown for malformed input. `id` is set when the header was readable (answer FORMERR). */
export class DnsFormatError extends Error {
  constructor(
    message: string,
    readonly id?: number,
    readonly opcode?: number,
  ) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

export interface Query {
  id: number;
  /** The raw 16-bit flags word of the query. */
  flags: number;
  opcode: number;
  /** Recursion desired. */
  rd: boolean;
  /** Lower-cased, fully qualified, with a trailing dot ("." for the root). */
  name: string;
  /** Lower-cased labels, without the root. */
  labels: string[];
  qtype: number;
  qclass: number;
  /** Present when the query carried an OPT record (EDNS0): the advertised UDP payload size. */
  udpSize?: number;
}

interface RRBase {
  name: string;
  ttl: number;
}
export type RR = RRBase &
  (
    | { type: 'A'; address: string }
    | { type: 'AAAA'; address: string }
    | { type: 'CNAME'; target: string }
    | { type: 'NS'; target: string }
    | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
    | {
        type: 'SOA';
        mname: string;
        rname: string;
        serial: number;
        refresh: number;
        retry: number;
        expire: number;
        minimum: number;
      }
  );

export interface Response {
  rcode: number;
  authoritative: boolean;
  answers: RR[];
  authority: RR[];
  additional: RR[];
}

const MAX_NAME = 255;
const MAX_LABEL = 63;
const MAX_JUMPS = 64;
export const UDP_DEFAULT_SIZE = 512;
export const UDP_MAX_SIZE = 4096;
export const TCP_MAX_SIZE = 65535;

/** A message as DNS over TCP carries it: a two-octet length, then the message (RFC 1035 4.2.2). */
export function tcpFrame(message: Buffer): Buffer {
  const framed = Buffer.alloc(2 + message.length);
  framed.writeUInt16BE(message.length, 0);
  message.copy(framed, 2);
  return framed;
}

/** The UDP response size limit for a query: 512 without EDNS, else the advertised size clamped to 512..4096. */
export function udpLimit(q: Query): number {
  if (q.udpSize === undefined) return UDP_DEFAULT_SIZE;
  return Math.min(UDP_MAX_SIZE, Math.max(UDP_DEFAULT_SIZE, q.udpSize));
}

function readName(
  buf: Buffer,
  start: number,
  err: (m: string) => DnsFormatError,
): { labels: string[]; next: number } {
  const labels: string[] = [];
  let pos = start;
  let next = -1; // offset after the name in the original stream (set at the first jump)
  let jumps = 0;
  let length = 1; // the root's zero octet
  for (;;) {
    if (pos >= buf.length) throw err('name runs past the end of the message');
    const len = buf[pos];
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw err('truncated compression pointer');
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (target >= pos) throw err('compression pointer does not point backwards');
      if (++jumps > MAX_JUMPS) throw err('too many compression pointers');
      if (next < 0) next = pos + 2;
      pos = target;
      continue;
    }
    if (kind !== 0) throw err('unsupported label type');
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { labels, next };
    }
    if (len > MAX_LABEL) throw err('label longer than 63 octets');
    if (pos + 1 + len > buf.length) throw err('label runs past the end of the message');
    length += len + 1;
    if (length > MAX_NAME) throw err('name longer than 255 octets');
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len).toLowerCase());
    pos += 1 + len;
  }
}

/** Parse a DNS query message. Throws DnsFormatError on any malformed input. */
export function parseQuery(buf: Buffer): Query {
  if (buf.length < 12) throw new DnsFormatError('message shorter than the 12-octet header');
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const opcode = (flags >> 11) & 0xf;
  if (flags & 0x8000) throw new DnsFormatError('message is a response, not a query');
  const err = (m: string): DnsFormatError => new DnsFormatError(m, id, opcode);
  const qdcount = buf.readUInt16BE(4);
  const ancount = buf.readUInt16BE(6);
  const nscount = buf.readUInt16BE(8);
  const arcount = buf.readUInt16BE(10);
  if (qdcount !== 1) throw err(`expected exactly one question, got ${qdcount}`);
  const { labels, next } = readName(buf, 12, err);
  if (next + 4 > buf.length) throw err('question truncated');
  const qtype = buf.readUInt16BE(next);
  const qclass = buf.readUInt16BE(next + 2);
  let pos = next + 4;
  let udpSize: number | undefined;
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    const rr = readName(buf, pos, err);
    if (rr.next + 10 > buf.length) throw err('resource record truncated');
    const type = buf.readUInt16BE(rr.next);
    const cls = buf.readUInt16BE(rr.next + 2);
    const rdlen = buf.readUInt16BE(rr.next + 8);
    pos = rr.next + 10 + rdlen;
    if (pos > buf.length) throw err('resource record data truncated');
    if (type === QTYPE.OPT && i >= ancount + nscount) {
      if (udpSize !== undefined) throw err('more than one OPT record');
      if (rr.labels.length !== 0) throw err('OPT record owner is not the root');
      udpSize = cls;
    }
  }
  const name = labels.length === 0 ? '.' : labels.join('.') + '.';
  const q: Query = { id, flags, opcode, rd: (flags & 0x0100) !== 0, name, labels, qtype, qclass };
  if (udpSize !== undefined) q.udpSize = udpSize;
  return q;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  buf = Buffer.alloc(1024);
  len = 0;
  /** Lower-cased name suffix ("a.b.") -> offset, for compression. */
  names = new Map<string, number>();

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  bytes(b: Buffer | Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  name(name: string, compress = true): void {
    const labels = splitName(name);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase() + '.';
      const at = this.names.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.len < 0x4000 && !this.names.has(suffix)) this.names.set(suffix, this.len);
      const l = Buffer.from(labels[i], 'latin1');
      this.u8(l.length);
      this.bytes(l);
    }
    this.u8(0);
  }
  rollback(to: number): void {
    this.len = to;
    for (const [k, v] of this.names) if (v >= to) this.names.delete(k);
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

function splitName(name: string): string[] {
  const labels = name.split('.').filter((l) => l.length > 0);
  let total = 1;
  for (const l of labels) {
    if (l.length > MAX_LABEL) throw new Error(`label too long in ${name}`);
    total += l.length + 1;
  }
  if (total > MAX_NAME) throw new Error(`name too long: ${name}`);
  return labels;
}

export function ipv4Bytes(address: string): Buffer {
  if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(address.split('.').map((p) => Number(p)));
}

export function ipv6Bytes(address: string): Buffer {
  let s = address;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!isIPv6(s)) throw new Error(`not an IPv6 address: ${address}`);
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = ipv4Bytes(last);
    s = `${s.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const parts = s.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length === 2 && parts[1] ? parts[1].split(':') : [];
  const groups =
    parts.length === 2
      ? [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail]
      : head;
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${address}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

const TYPE_CODE: Record<RR['type'], number> = {
  A: QTYPE.A,
  AAAA: QTYPE.AAAA,
  CNAME: QTYPE.CNAME,
  NS: QTYPE.NS,
  SRV: QTYPE.SRV,
  SOA: QTYPE.SOA,
};

function writeRR(w: Writer, rr: RR): void {
  w.name(rr.name);
  w.u16(TYPE_CODE[rr.type]);
  w.u16(QCLASS.IN);
  w.u32(Math.max(0, Math.floor(rr.ttl)));
  const lenAt = w.len;
  w.u16(0);
  const start = w.len;
  switch (rr.type) {
    case 'A':
      w.bytes(ipv4Bytes(rr.address));
      break;
    case 'AAAA':
      w.bytes(ipv6Bytes(rr.address));
      break;
    case 'CNAME':
    case 'NS':
      w.name(rr.target);
      break;
    case 'SRV':
      w.u16(rr.priority);
      w.u16(rr.weight);
      w.u16(rr.port);
      w.name(rr.target, false); // RFC 2782: the target is not compressed
      break;
    case 'SOA':
      w.name(rr.mname);
      w.name(rr.rname);
      w.u32(rr.serial);
      w.u32(rr.refresh);
      w.u32(rr.retry);
      w.u32(rr.expire);
      w.u32(rr.minimum);
      break;
  }
  w.buf.writeUInt16BE(w.len - start, lenAt);
}

function writeHeader(w: Writer, id: number, flags: number): void {
  w.u16(id);
  w.u16(flags);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  w.u16(0);
}

/**
 * Encode a response to `q`. When the message would exceed `maxSize` (default 512), records that
 * do not fit are dropped: dropping answers or authority records sets TC; dropping additional
 * records does not (RFC 2181 9). An OPT record is echoed when the query carried one.
 */
export function encodeResponse(q: Query, r: Response, maxSize = UDP_DEFAULT_SIZE): Buffer {
  const limit = Math.min(TCP_MAX_SIZE, Math.max(UDP_DEFAULT_SIZE, maxSize));
  const w = new Writer();
  const optSize = q.udpSize !== undefined ? 11 : 0;
  const budget = limit - optSize;
  writeHeader(w, q.id, 0);
  w.name(q.name);
  w.u16(q.qtype);
  w.u16(q.qclass);
  let tc = false;
  const counts = [0, 0, 0];
  const sections = [r.answers, r.authority, r.additional];
  outer: for (let s = 0; s < 3; s++) {
    for (const rr of sections[s]) {
      const before = w.len;
      writeRR(w, rr);
      if (w.len > budget) {
        w.rollback(before);
        if (s < 2) tc = true;
        break outer;
      }
      counts[s]++;
    }
  }
  if (optSize) {
    w.u8(0); // root
    w.u16(QTYPE.OPT);
    w.u16(UDP_MAX_SIZE); // our UDP payload size
    w.u32(0); // extended rcode 0, version 0, flags 0
    w.u16(0);
    counts[2]++;
  }
  let flags = 0x8000 | ((q.opcode & 0xf) << 11) | (r.rcode & 0xf);
  if (r.authoritative) flags |= 0x0400;
  if (tc) flags |= 0x0200;
  if (q.rd) flags |= 0x0100;
  w.buf.writeUInt16BE(flags, 2);
  w.buf.writeUInt16BE(1, 4);
  w.buf.writeUInt16BE(counts[0], 6);
  w.buf.writeUInt16BE(counts[1], 8);
  w.buf.writeUInt16BE(counts[2], 10);
  return w.result();
}

/** A header-only response (no question echoed), e.g. FORMERR for a query we could not parse. */
export function encodeError(id: number, rcode: number, opcode = 0): Buffer {
  const w = new Writer();
  writeHeader(w, id, 0x8000 | ((opcode & 0xf) << 11) | (rcode & 0xf));
  return w.result();
}

// ---------------------------------------------------------------------------------------------
// Decoding responses (used by tests and tooling; tolerant of what encodeResponse writes).

export interface DecodedResponse {
  id: number;
  flags: number;
  rcode: number;
  aa: boolean;
  tc: boolean;
  question?: { name: string; qtype: number; qclass: number };
  answers: DecodedRR[];
  authority: DecodedRR[];
  additional: DecodedRR[];
}
export interface DecodedRR {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: string | { [k: string]: string | number };
}

/** Decode a response message (for tests and debugging). Throws DnsFormatError when malformed. */
export function decodeResponse(buf: Buffer): DecodedResponse {
  if (buf.length < 12) throw new DnsFormatError('message shorter than the 12-octet header');
  const err = (m: string): DnsFormatError => new DnsFormatError(m);
  const fqdn = (labels: string[]): string => (labels.length ? labels.join('.') + '.' : '.');
  const flags = buf.readUInt16BE(2);
  const out: DecodedResponse = {
    id: buf.readUInt16BE(0),
    flags,
    rcode: flags & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    answers: [],
    authority: [],
    additional: [],
  };
  const qd = buf.readUInt16BE(4);
  const counts = [buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const n = readName(buf, pos, err);
    if (n.next + 4 > buf.length) throw err('question truncated');
    out.question = {
      name: fqdn(n.labels),
      qtype: buf.readUInt16BE(n.next),
      qclass: buf.readUInt16BE(n.next + 2),
    };
    pos = n.next + 4;
  }
  const sections = [out.answers, out.authority, out.additional];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]; i++) {
      const n = readName(buf, pos, err);
      if (n.next + 10 > buf.length) throw err('record truncated');
      const type = buf.readUInt16BE(n.next);
      const cls = buf.readUInt16BE(n.next + 2);
      const ttl = buf.readUInt32BE(n.next + 4);
      const rdlen = buf.readUInt16BE(n.next + 8);
      const rd = n.next + 10;
      if (rd + rdlen > buf.length) throw err('record data truncated');
      let data: DecodedRR['data'] = buf.subarray(rd, rd + rdlen).toString('hex');
      if (type === QTYPE.A && rdlen === 4) data = [...buf.subarray(rd, rd + 4)].join('.');
      else if (type === QTYPE.AAAA && rdlen === 16) {
        const g: string[] = [];
        for (let k = 0; k < 8; k++) g.push(buf.readUInt16BE(rd + k * 2).toString(16));
        data = g.join(':');
      } else if (type === QTYPE.NS || type === QTYPE.CNAME)
        data = fqdn(readName(buf, rd, err).labels);
      else if (type === QTYPE.SRV && rdlen >= 7)
        data = {
          priority: buf.readUInt16BE(rd),
          weight: buf.readUInt16BE(rd + 2),
          port: buf.readUInt16BE(rd + 4),
          target: fqdn(readName(buf, rd + 6, err).labels),
        };
      else if (type === QTYPE.SOA) {
        const m = readName(buf, rd, err);
        const rn = readName(buf, m.next, err);
        if (rn.next + 20 > buf.length) throw err('SOA truncated');
        data = {
          mname: fqdn(m.labels),
          rname: fqdn(rn.labels),
          serial: buf.readUInt32BE(rn.next),
          refresh: buf.readUInt32BE(rn.next + 4),
          retry: buf.readUInt32BE(rn.next + 8),
          expire: buf.readUInt32BE(rn.next + 12),
          minimum: buf.readUInt32BE(rn.next + 16),
        };
      }
      sections[s].push({ name: fqdn(n.labels), type, class: cls, ttl, data });
      pos = rd + rdlen;
    }
  }
  return out;
}

/** Encode a query (for tests and tooling). */
export function encodeQuery(
  id: number,
  name: string,
  qtype: number,
  opts: { rd?: boolean; udpSize?: number } = {},
): Buffer {
  const w = new Writer();
  writeHeader(w, id, opts.rd === false ? 0 : 0x0100);
  w.buf.writeUInt16BE(1, 4);
  w.name(name, false);
  w.u16(qtype);
  w.u16(QCLASS.IN);
  if (opts.udpSize !== undefined) {
    w.u8(0);
    w.u16(QTYPE.OPT);
    w.u16(opts.udpSize);
    w.u32(0);
    w.u16(0);
    w.buf.writeUInt16BE(1, 10);
  }
  return w.result();
}
