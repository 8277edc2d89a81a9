/**
 * An HPACK encoder (RFC 7541) that never uses the dynamic table: each field is either an
 * index into the static table (name and value both match) or a literal "without indexing"
 * (6.2.2), with the name indexed when the static table has it, strings in plain octets. The
 * peer's decoder therefore never holds state on our behalf, so no table size update is ever
 * needed and a block costs one pass and one buffer. A proxy re-encodes what it decoded; the
 * few octets Huffman or indexing would save on loopback and LAN hops cost more CPU than they
 * save.
 */
import { STATIC_TABLE } from './hpack.js';

const exact = new Map<string, number>();
const names = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (v !== '' && !exact.has(`${n}\0${v}`)) exact.set(`${n}\0${v}`, i + 1);
  if (!names.has(n)) names.set(n, i + 1);
});

/** Octets an integer with an N-bit prefix can take at most here (values below 2^28). */
const INT_MAX_OCTETS = 5;

/** Writes `n` with a `bits`-bit prefix and the high bits `mask` at `at`; returns the end. */
function integer(buf: Buffer, at: number, n: number, bits: number, mask: number): number {
  const max = (1 << bits) - 1;
  if (n < max) {
    buf[at] = mask | n;
    return at + 1;
  }
  buf[at++] = mask | max;
  n -= max;
  while (n >= 128) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at] = n;
  return at + 1;
}

function literal(buf: Buffer, at: number, s: string): number {
  at = integer(buf, at, s.length, 7, 0);
  return at + buf.write(s, at, 'latin1');
}

/**
 * Encodes `fields` (name, value, name, value, ...; names lower case, values octets as latin1
 * strings) into one header block.
 */
export function encodeHeaderBlock(fields: readonly string[]): Buffer {
  let bound = 0;
  for (let i = 0; i < fields.length; i++) bound += fields[i]!.length + INT_MAX_OCTETS;
  const buf = Buffer.allocUnsafe(bound + 1);
  let at = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    // Only pseudo-headers and accept-encoding have values in the static table.
    const both =
      name.charCodeAt(0) === 58 || name === 'accept-encoding'
        ? exact.get(`${name}\0${value}`)
        : undefined;
    if (both !== undefined) {
      at = integer(buf, at, both, 7, 0x80);
      continue;
    }
    const n = names.get(name);
    if (n !== undefined) at = integer(buf, at, n, 4, 0);
    else {
      buf[at++] = 0;
      at = literal(buf, at, name);
    }
    at = literal(buf, at, value);
  }
  return buf.subarray(0, at);
}
