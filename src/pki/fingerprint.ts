/** Hex spellings of identifiers and certificate fingerprints. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { pemDecode } from './pem.js';

/** Lower-case colon-separated hex ("0a:1b:..."), the form Consul uses for ids and serials. */
export function colonHex(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A serial number's colon-hex, without the sign-padding zero bytes DER may carry. */
export function serialHex(serial: Buffer): string {
  let b = serial;
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  return colonHex(b);
}

/** SHA-1 of the certificate DER in lower-case colon-hex: a CARoot's ID. */
export function sha1Fingerprint(pem: string): string {
  const der = pemDecode(pem, 'CERTIFICATE', 'certificate');
  return colonHex(createHash('sha1').update(der).digest());
}

/** SHA-256 of the certificate DER in lower-case hex without colons: what agents pin. */
export function caFingerprint(pem: string): string {
  const der = pemDecode(pem, 'CERTIFICATE', 'certificate');
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Whether `given` is the SHA-256 fingerprint of `pem`, written either as plain hex or colon-hex,
 * in any case, optionally prefixed "sha256:" (how people paste it from openssl and docs).
 */
export function fingerprintMatches(pem: string, given: string): boolean {
  let g = given.trim().toLowerCase();
  if (g.startsWith('sha256:')) g = g.slice('sha256:'.length);
  if (/^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/.test(g)) g = g.replace(/:/g, '');
  if (!/^[0-9a-f]{64}$/.test(g)) return false;
  const want = Buffer.from(caFingerprint(pem), 'hex');
  return timingSafeEqual(want, Buffer.from(g, 'hex'));
}
