/**
 * The parts of a certificate the CA needs that Node's X509Certificate does not expose: the raw
 * subject and issuer names (to chain byte for byte), the key identifiers, basicConstraints and
 * the SANs as lists.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { badRequest } from '../core/index.js';
import { children, ctx, expectTag, readOnly, TAG, value, whole, type Tlv } from './der.js';
import {
  OID,
  readAuthorityKeyId,
  readBasicConstraints,
  readExtendedKeyUsage,
  readExtensions,
  readSubjectAltNames,
  readSubjectKeyId,
} from './extensions.js';
import { pemDecode } from './pem.js';

export interface CertInfo {
  der: Buffer;
  /** The serial's INTEGER contents (may start with a sign-padding zero byte). */
  serial: Buffer;
  x509: X509Certificate;
  publicKey: KeyObject;
  /** DER of the subject and issuer Names, exactly as encoded in the certificate. */
  subjectName: Buffer;
  issuerName: Buffer;
  subjectKeyId: Buffer | undefined;
  authorityKeyId: Buffer | undefined;
  isCA: boolean;
  /** keyUsage bit names that are set (digitalSignature, keyCertSign, ...). */
  keyUsage: string[];
  /** extKeyUsage purpose OIDs; undefined when the extension is absent. */
  extKeyUsage: string[] | undefined;
  pathLen: number | undefined;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
}

const WHAT = 'certificate';

/** Reads the first certificate of a PEM text (or raw DER). Malformed input is a 400. */
export function readCertificate(pemOrDer: string | Buffer): CertInfo {
  const der = typeof pemOrDer === 'string' ? pemDecode(pemOrDer, 'CERTIFICATE', WHAT) : pemOrDer;
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = new X509Certificate(der);
    publicKey = x509.publicKey; // a lazy getter that throws on an undecodable key
  } catch {
    throw badRequest(`${WHAT}: not a readable X.509 certificate`, WHAT);
  }
  // Node accepted it, so the outer shape is sound; walk the TBS for what Node does not show.
  const outer = readOnly(der, WHAT);
  const tbs = expectTag(children(der, outer, WHAT)[0], TAG.sequence, WHAT, 'tbsCertificate');
  const fields = children(der, tbs, WHAT);
  const at = fields[0]?.tag === ctx(0, true) ? 1 : 0; // skip the explicit version
  const serial = expectTag(fields[at], TAG.integer, WHAT, 'serial number');
  const issuer = expectTag(fields[at + 2], TAG.sequence, WHAT, 'issuer');
  const validity = children(der, expectTag(fields[at + 3], TAG.sequence, WHAT, 'validity'), WHAT);
  const subject = expectTag(fields[at + 4], TAG.sequence, WHAT, 'subject');
  const extsWrapper = fields.slice(at + 6).find((f) => f.tag === ctx(3, true));
  const exts = extsWrapper
    ? readExtensions(
        der,
        expectTag(children(der, extsWrapper, WHAT)[0], TAG.sequence, WHAT, 'extensions'),
        WHAT,
      )
    : [];
  const ext = (oid: string): Buffer | undefined => exts.find((e) => e.oid === oid)?.value;
  const bc = ext(OID.basicConstraints);
  const basic = bc ? readBasicConstraints(bc, WHAT) : { isCA: false, pathLen: undefined };
  const san = ext(OID.subjectAltName);
  const names = san
    ? readSubjectAltNames(san, WHAT)
    : { uris: [], dnsNames: [], ipAddresses: [], other: [] };
  const ski = ext(OID.subjectKeyId);
  const aki = ext(OID.authorityKeyId);
  const eku = ext(OID.extKeyUsage);
  return {
    der: Buffer.from(der),
    serial: Buffer.from(value(der, serial)),
    x509,
    publicKey,
    subjectName: Buffer.from(whole(der, subject)),
    issuerName: Buffer.from(whole(der, issuer)),
    subjectKeyId: ski ? readSubjectKeyId(ski, WHAT) : undefined,
    authorityKeyId: aki ? readAuthorityKeyId(aki, WHAT) : undefined,
    isCA: basic.isCA,
    keyUsage: keyUsageNames(ext(OID.keyUsage)),
    extKeyUsage: eku ? readExtendedKeyUsage(eku, WHAT) : undefined,
    pathLen: basic.pathLen,
    uris: names.uris,
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    notBefore: readTime(der, validity[0]),
    notAfter: readTime(der, validity[1]),
  };
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function readTime(der: Buffer, t: Tlv | undefined): Date {
  const text = t ? value(der, t).toString('latin1') : '';
  const m =
    t?.tag === TAG.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : t?.tag === TAG.generalizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!m) throw badRequest(`${WHAT}: malformed validity time`, WHAT);
  let year = Number(m[1]);
  if (t?.tag === TAG.utcTime) year += year < 50 ? 2000 : 1900;
  const [mo, d, h, mi, s] = m.slice(2).map(Number) as [number, number, number, number, number];
  return new Date(Date.UTC(year, mo - 1, d, h, mi, s));
}

const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

function keyUsageNames(der: Buffer | undefined): string[] {
  if (!der) return [];
  const t = readOnly(der, WHAT);
  if (t.tag !== TAG.bitString || t.end - t.valueStart < 1)
    throw badRequest(`${WHAT}: malformed keyUsage`, WHAT);
  const bytes = der.subarray(t.valueStart + 1, t.end);
  return KEY_USAGE_BITS.filter((_, i) => ((bytes[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0);
}
