import { encodeQuery, QTYPE } from '../../src/agent/dns/wire.js';

/**
 * `count` malformed DNS queries, the same on every call: odd ones random bytes (with qdcount 1,
 * so a parser reads on), even ones a valid EDNS query with up to four bytes changed and cut short.
 */
export function fuzzedDnsQueries(count: number): Buffer[] {
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const valid = encodeQuery(1, 'web.service.consul', QTYPE.A, { udpSize: 1232 });
  const packets: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let buf: Buffer;
    if (i % 2) {
      buf = Buffer.alloc(rnd() % 600);
      for (let k = 0; k < buf.length; k++) buf[k] = rnd() & 255;
      if (buf.length >= 6) buf.writeUInt16BE(1, 4);
    } else {
      buf = Buffer.from(valid);
      for (let k = 0; k < 1 + (rnd() % 4); k++) buf[rnd() % buf.length] = rnd() & 255;
      buf = buf.subarray(0, rnd() % (buf.length + 1));
    }
    packets.push(buf);
  }
  return packets;
}
