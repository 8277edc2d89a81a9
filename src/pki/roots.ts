/**
 * Root CA generation and the CARoot record Consul's /v1/connect/ca/roots serves. A root is an
 * EC P-256 self-signed CA whose only SAN is the trust domain's SPIFFE id; the built-in provider
 * signs leaves with the root key directly, so SigningKeyID is the root's own key id.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { badRequest } from '../core/index.js';
import { readCertificate } from './certinfo.js';
import { colonHex, sha1Fingerprint } from './fingerprint.js';
import { pemEncode } from './pem.js';
import { randomRootSerial, serialToNumber } from './serial.js';
import { CLOCK_SKEW_MS, floorToSecond, isoSeconds } from './time.js';
import { issueCertificate, keyId, publicOf } from './x509.js';

/** Consul's CARoot fields that depend only on the certificate (store fields come later). */
export interface CARootInfo {
  /** SHA-1 fingerprint of the root DER, lower-case colon-hex. */
  ID: string;
  Name: string;
  SerialNumber: number;
  /** Colon-hex subject key id of the certificate that signs leaves. */
  SigningKeyID: string;
  NotBefore: string;
  NotAfter: string;
  RootCert: string;
  IntermediateCerts: string[] | null;
  PrivateKeyType: 'ec';
  PrivateKeyBits: 256;
  TrustDomain: string;
}

export interface GenerateRootOptions {
  /** The cluster UUID; its first 8 characters go into the root's CN. */
  clusterId: string;
  /** Usually `<clusterId>.consul`. */
  trustDomain: string;
  ttlMs: number;
  now: Date;
  /** At most 53 bits, so SerialNumber stays an exact JSON number; random when absent. */
  serial?: Buffer;
}

export interface GeneratedRoot {
  certPem: string;
  /** PKCS#8 PEM of the root's private key. */
  keyPem: string;
  root: CARootInfo;
}

export const ROOT_NAME = 'Trellis CA Primary Cert';
const TRUST_DOMAIN = /^[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?$/;
const CLUSTER_ID = /^[A-Za-z0-9-]{8,64}$/;

/** Consul's CA common name shape: pri-<uid>.consul.ca.<cluster id prefix>.consul. */
export function rootCommonName(clusterId: string, uid: string): string {
  return `pri-${uid}.consul.ca.${clusterId.slice(0, 8).toLowerCase()}.consul`;
}

/** Makes a new root key and self-signed root certificate. */
export function generateRoot(opts: GenerateRootOptions): GeneratedRoot {
  if (!CLUSTER_ID.test(opts.clusterId))
    throw badRequest('CA: cluster id must be 8-64 letters, digits or dashes', 'clusterId');
  if (!TRUST_DOMAIN.test(opts.trustDomain))
    throw badRequest(`CA: "${opts.trustDomain}" is not a valid trust domain`, 'trustDomain');
  if (!(opts.ttlMs > 0)) throw badRequest('CA: root TTL must be positive', 'ttlMs');
  const serial = opts.serial ?? randomRootSerial();
  if (serialToNumber(serial) === undefined)
    throw badRequest('CA: root serial must be between 1 and 2^53-1', 'serial');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = floorToSecond(opts.now);
  // The CN is unique per root so that old and new roots never share a subject during rotation.
  const cn = rootCommonName(opts.clusterId, randomBytes(4).toString('hex'));
  const certPem = issueCertificate({
    serial,
    subjectCN: cn,
    issuerCN: cn,
    // Backdated like leaves, so servers with slightly slow clocks accept it at once.
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + opts.ttlMs),
    publicKey: publicOf(privateKey),
    signerKey: privateKey,
    signerPublicKey: publicOf(privateKey),
    isCA: true,
    uris: [`spiffe://${opts.trustDomain}`],
  });
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    root: describeRoot(certPem, opts.trustDomain),
  };
}

/**
 * The CARoot record for a root certificate (ours or an imported one). `signingCertPem` is the
 * certificate that signs leaves when that is not the root itself (an intermediate).
 */
export function describeRoot(
  certPem: string,
  trustDomain: string,
  opts: { intermediates?: string[]; signingCertPem?: string; name?: string } = {},
): CARootInfo {
  const info = readCertificate(certPem);
  if (!info.isCA) throw badRequest('CA: the root certificate is not a CA', 'RootCert');
  const pub = info.publicKey;
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw badRequest('CA: the root key must be EC P-256', 'RootCert');
  const signer = opts.signingCertPem ? readCertificate(opts.signingCertPem) : info;
  const serial = serialToNumber(info.serial);
  if (serial === undefined)
    throw badRequest('CA: the root serial number does not fit in 53 bits', 'RootCert');
  return {
    ID: sha1Fingerprint(certPem),
    Name: opts.name ?? ROOT_NAME,
    SerialNumber: serial,
    SigningKeyID: colonHex(signer.subjectKeyId ?? keyId(signer.publicKey)),
    NotBefore: isoSeconds(info.notBefore),
    NotAfter: isoSeconds(info.notAfter),
    RootCert: pemEncode('CERTIFICATE', info.der),
    IntermediateCerts:
      opts.intermediates && opts.intermediates.length > 0 ? opts.intermediates : null,
    PrivateKeyType: 'ec',
    PrivateKeyBits: 256,
    TrustDomain: trustDomain,
  };
}

/** Loads a PKCS#8 (or SEC1) PEM private key. Malformed is a 400. */
export function loadPrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw badRequest('CA: the private key is not a readable PEM key', 'PrivateKey');
  }
}

/** Whether `key` is the private half of the certificate's public key. */
export function keyMatchesCert(key: KeyObject, certPem: string): boolean {
  try {
    return readCertificate(certPem).x509.checkPrivateKey(key);
  } catch {
    return false;
  }
}
