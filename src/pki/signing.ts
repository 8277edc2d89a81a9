/**
 * Signs leaf certificates from agents' CSRs. The identity in the certificate is chosen by the
 * server (the caller passes the SPIFFE id it has authorized); the request only contributes its
 * key. A request that asks for anything more than that identity plus SANs the caller allows is
 * refused rather than silently trimmed, so a confused or hostile agent learns why.
 */
import type { KeyObject } from 'node:crypto';
import { badRequest, MeshError } from '../core/index.js';
import { readCertificate, type CertInfo } from './certinfo.js';
import { inspectCsr } from './csr.js';
import { serialHex } from './fingerprint.js';
import { canonicalIp } from './ip.js';
import { randomSerial } from './serial.js';
import { CLOCK_SKEW_MS, floorToSecond, isoSeconds, minDate } from './time.js';
import { issueCertificate } from './x509.js';

export interface SignLeafOptions {
  csrPem: string;
  /** The SPIFFE id the caller authorized; the only URI the certificate will carry. */
  expectedUri: string;
  /** The key and certificate that sign leaves (the active root for the built-in CA). */
  signerKey: KeyObject;
  signerCertPem: string;
  ttlMs: number;
  now: Date;
  /** Defaults to 128 random bits. */
  serial?: Buffer;
  /** DNS SANs the request may ask for (default none). */
  dnsNames?: string[];
  /** IP SANs the request may ask for (default none). */
  ipAddresses?: string[];
}

export interface SignedLeaf {
  /** The leaf alone; callers append intermediates (e.g. cross-signed roots) for the chain. */
  certPem: string;
  /** Lower-case colon-hex, as Consul reports it. */
  serialNumber: string;
  /** NotBefore / NotAfter, RFC 3339. */
  validAfter: string;
  validBefore: string;
}

const MAX_URI = 2048;
const shown = (s: string): string => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);

function caError(message: string): MeshError {
  return new MeshError('MESH_ERR_CA', 'system', message);
}

/**
 * The signing certificate, parsed and checked against its key once: a CA signs thousands of
 * leaves with the same pair, and parsing it each time cost more than the signature.
 */
const signers = new Map<string, { info: CertInfo; keys: WeakSet<KeyObject> }>();

function signerInfo(certPem: string, key: KeyObject): CertInfo {
  let s = signers.get(certPem);
  if (!s) {
    const info = readCertificate(certPem);
    if (!info.isCA) throw caError('CA: the signing certificate is not a CA');
    if (signers.size >= 16) signers.clear();
    signers.set(certPem, (s = { info, keys: new WeakSet() }));
  }
  if (!s.keys.has(key)) {
    if (!s.info.x509.checkPrivateKey(key))
      throw caError('CA: the signing key does not match the signing certificate');
    s.keys.add(key);
  }
  return s.info;
}

/** Checks `csrPem` against what the caller allows and signs a leaf for `expectedUri`. */
export function signLeaf(opts: SignLeafOptions): SignedLeaf {
  const uri = opts.expectedUri;
  if (!uri.startsWith('spiffe://') || uri.length > MAX_URI || !/^[\x21-\x7e]+$/.test(uri))
    throw badRequest(`CA: ${shown(uri)} is not a SPIFFE id`, 'expectedUri');
  if (!(opts.ttlMs > 0)) throw badRequest('CA: leaf TTL must be positive', 'ttlMs');

  const csr = inspectCsr(opts.csrPem);
  if (csr.isCA)
    throw badRequest('CSR: asks for a CA certificate (basicConstraints CA:true)', 'CSR');
  if (csr.otherNameTypes.length > 0)
    throw badRequest(
      `CSR: asks for unsupported SAN types: ${csr.otherNameTypes.join(', ')}`,
      'CSR',
    );
  for (const u of csr.uris)
    if (u !== uri)
      throw badRequest(
        `CSR: asks for URI SAN ${shown(u)}; only ${shown(uri)} may be requested`,
        'CSR',
      );

  const allowedDns = new Map((opts.dnsNames ?? []).map((d) => [d.toLowerCase(), d]));
  const dnsNames = new Set<string>();
  for (const d of csr.dnsNames) {
    const granted = allowedDns.get(d.toLowerCase());
    if (granted === undefined) throw badRequest(`CSR: DNS SAN ${shown(d)} is not allowed`, 'CSR');
    dnsNames.add(granted);
  }
  const allowedIps = new Set((opts.ipAddresses ?? []).map((ip) => canonicalIp(ip) ?? ''));
  const ipAddresses = new Set<string>();
  for (const ip of csr.ipAddresses) {
    if (!allowedIps.has(ip)) throw badRequest(`CSR: IP SAN ${shown(ip)} is not allowed`, 'CSR');
    ipAddresses.add(ip);
  }

  const signer = signerInfo(opts.signerCertPem, opts.signerKey);
  const now = floorToSecond(opts.now);
  // Backdated a minute for clock skew, as Consul does; very short lifetimes (seconds, for tests
  // and aggressive rotation) are backdated by a quarter of the lifetime instead.
  const notBefore = new Date(now.getTime() - Math.min(CLOCK_SKEW_MS, Math.floor(opts.ttlMs / 4)));
  const notAfter = minDate(new Date(notBefore.getTime() + opts.ttlMs), signer.notAfter);
  if (notAfter <= now) throw caError('CA: the signing certificate has expired');

  const serial = opts.serial ?? randomSerial();
  const certPem = issueCertificate({
    serial,
    subjectCN: '',
    issuerName: signer.subjectName,
    notBefore,
    notAfter,
    publicKey: csr.publicKey,
    publicKeyDer: csr.spkiDer,
    signerKey: opts.signerKey,
    signerPublicKey: signer.publicKey,
    authorityKeyId: signer.subjectKeyId,
    isCA: false,
    uris: [uri],
    dnsNames: [...dnsNames],
    ipAddresses: [...ipAddresses],
  });
  return {
    certPem,
    serialNumber: serialHex(serial),
    validAfter: isoSeconds(notBefore),
    validBefore: isoSeconds(notAfter),
  };
}
