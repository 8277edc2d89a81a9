/**
 * A small DER reader. Certificates and requests are walked by hand rather than through
 * node-forge's parser so that (a) byte ranges such as names and signed bodies are taken exactly
 * as sent, and (b) every malformed input ends in a 400 naming what was being read, never a
 * TypeError from deep inside a library.
 */
import forge from 'node-forge';
import { badRequest } from '../core/index.js';

/** One tag-length-value: the tag byte and where its header, value and end are in the buffer. */
export interface Tlv {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag number `n`, primitive or constructed. */
export const ctx = (n: number, constructed = false): number => (constructed ? 0xa0 : 0x80) | n;

/** Reads one TLV at `at`. `what` prefixes error messages ("CSR", "certificate"). */
export function readTlv(buf: Buffer, at: number, what: string, limit = buf.length): Tlv {
  if (at + 2 > limit) throw badRequest(`${what}: truncated`, what);
  const tag = buf[at]!;
  // Multi-byte tags never occur in X.509 or PKCS#10.
  if ((tag & 0x1f) === 0x1f) throw badRequest(`${what}: unsupported DER tag`, what);
  let len = buf[at + 1]!;
  let valueStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw badRequest(`${what}: indefinite length is not DER`, what);
    if (n > 3) throw badRequest(`${what}: length too large`, what);
    if (valueStart + n > limit) throw badRequest(`${what}: truncated`, what);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]!;
    valueStart += n;
  }
  const end = valueStart + len;
  if (end > limit) throw badRequest(`${what}: truncated`, what);
  return { tag, start: at, valueStart, end };
}

/** Reads a whole buffer as exactly one TLV (no trailing bytes). */
export function readOnly(buf: Buffer, what: string): Tlv {
  const t = readTlv(buf, 0, what);
  if (t.end !== buf.length) throw badRequest(`${what}: trailing bytes after the DER value`, what);
  return t;
}

/** The TLVs directly inside a constructed value. */
export function children(buf: Buffer, parent: Tlv, what: string): Tlv[] {
  const out: Tlv[] = [];
  let at = parent.valueStart;
  while (at < parent.end) {
    const t = readTlv(buf, at, what, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** Checks a TLV's tag, naming the field in the error. */
export function expectTag(t: Tlv | undefined, tag: number, what: string, field: string): Tlv {
  if (!t || t.tag !== tag) throw badRequest(`${what}: malformed ${field}`, what);
  return t;
}

export const value = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.valueStart, t.end);
export const whole = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

/** The dotted form of an OBJECT IDENTIFIER TLV. */
export function readOid(buf: Buffer, t: Tlv, what: string): string {
  expectTag(t, TAG.oid, what, 'object identifier');
  const bytes = value(buf, t);
  // Every sub-identifier must end with a byte whose top bit is clear.
  if (bytes.length === 0 || (bytes[bytes.length - 1]! & 0x80) !== 0)
    throw badRequest(`${what}: malformed object identifier`, what);
  return forge.asn1.derToOid(forge.util.createBuffer(bytes.toString('binary')));
}

/** A DER BOOLEAN. */
export function readBoolean(buf: Buffer, t: Tlv, what: string): boolean {
  expectTag(t, TAG.boolean, what, 'boolean');
  if (t.end - t.valueStart !== 1) throw badRequest(`${what}: malformed boolean`, what);
  return buf[t.valueStart] !== 0;
}

/** A small non-negative INTEGER (such as a path length). */
export function readSmallInt(buf: Buffer, t: Tlv | undefined, what: string, field: string): number {
  const bytes = value(buf, expectTag(t, TAG.integer, what, field));
  if (bytes.length === 0 || bytes.length > 4 || (bytes[0]! & 0x80) !== 0)
    throw badRequest(`${what}: malformed ${field}`, what);
  return bytes.reduce((n, b) => n * 256 + b, 0);
}

/** The contents of a BIT STRING whose bit count is a whole number of bytes. */
export function readBitStringBytes(buf: Buffer, t: Tlv, what: string, field: string): Buffer {
  expectTag(t, TAG.bitString, what, field);
  if (t.end - t.valueStart < 1 || buf[t.valueStart] !== 0)
    throw badRequest(`${what}: malformed ${field}`, what);
  return buf.subarray(t.valueStart + 1, t.end);
}
