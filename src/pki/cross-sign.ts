/**
 * Cross-signing for root rotation. A cross-signed certificate carries one root's subject, key
 * and key id but is issued (and signed) by another root, so a chain that ends at the first root
 * can be completed up to the second. Forward (old signs new): proxies that only trust the old
 * root accept leaves from the new root sent as `leaf + cross-cert`. Reverse (new signs old):
 * proxies that already trust only the new root accept a not-yet-renewed old leaf sent as
 * `leaf + reverse cross-cert`.
 */
import type { KeyObject } from 'node:crypto';
import { badRequest } from '../core/index.js';
import { readCertificate } from './certinfo.js';
import { randomSerial } from './serial.js';
import { CLOCK_SKEW_MS, floorToSecond, minDate } from './time.js';
import { issueCertificate } from './x509.js';

export interface CrossSignOptions {
  /** The root being vouched for: its subject, key and SANs are copied. */
  subjectRootPem: string;
  /** The root doing the vouching, and its private key. */
  issuerRootPem: string;
  issuerKey: KeyObject;
  now: Date;
  ttlMs: number;
  serial?: Buffer;
}

/**
 * A copy of `subjectRootPem` issued by `issuerRootPem`. Valid from now - 1 min until now + ttl,
 * cut to the issuer's expiry (it cannot vouch past its own life) and the subject's (a cross
 * certificate must not extend the life of the root it copies).
 */
export function crossSignCertificate(opts: CrossSignOptions): string {
  const subject = readCertificate(opts.subjectRootPem);
  const issuer = readCertificate(opts.issuerRootPem);
  if (!subject.isCA || !issuer.isCA)
    throw badRequest('CA: only CA certificates can be cross-signed', 'RootCert');
  if (!issuer.x509.checkPrivateKey(opts.issuerKey))
    throw badRequest("CA: the signing key does not match the issuing root's certificate", 'key');
  if (!(opts.ttlMs > 0)) throw badRequest('CA: cross-sign TTL must be positive', 'ttlMs');
  const now = floorToSecond(opts.now);
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = minDate(new Date(now.getTime() + opts.ttlMs), issuer.notAfter, subject.notAfter);
  if (notAfter <= notBefore)
    throw badRequest('CA: a root involved has already expired', 'NotAfter');
  return issueCertificate({
    serial: opts.serial ?? randomSerial(),
    subjectName: subject.subjectName,
    issuerName: issuer.subjectName,
    notBefore,
    notAfter,
    publicKey: subject.publicKey,
    // Leaves name their issuer by key id, so the copy must keep the original's.
    subjectKeyId: subject.subjectKeyId,
    authorityKeyId: issuer.subjectKeyId,
    signerKey: opts.issuerKey,
    signerPublicKey: issuer.publicKey,
    isCA: true,
    pathLen: subject.pathLen,
    uris: subject.uris,
    dnsNames: subject.dnsNames,
    ipAddresses: subject.ipAddresses,
  });
}

/** Forward cross-sign at rotation: the old root vouches for the new one. */
export function crossSign(opts: {
  newRootPem: string;
  oldRootPem: string;
  oldRootKey: KeyObject;
  now: Date;
  ttlMs: number;
  serial?: Buffer;
}): string {
  return crossSignCertificate({
    subjectRootPem: opts.newRootPem,
    issuerRootPem: opts.oldRootPem,
    issuerKey: opts.oldRootKey,
    now: opts.now,
    ttlMs: opts.ttlMs,
    serial: opts.serial,
  });
}

/**
 * Reverse cross-sign at rotation: the new root vouches for the old one, so holders of old leaves
 * can still be verified by peers that already dropped the old root from their bundle. The old
 * leaf's holder must send it after the leaf.
 */
export function reverseCrossSign(opts: {
  newRootPem: string;
  newRootKey: KeyObject;
  oldRootPem: string;
  now: Date;
  ttlMs: number;
  serial?: Buffer;
}): string {
  return crossSignCertificate({
    subjectRootPem: opts.oldRootPem,
    issuerRootPem: opts.newRootPem,
    issuerKey: opts.newRootKey,
    now: opts.now,
    ttlMs: opts.ttlMs,
    serial: opts.serial,
  });
}
