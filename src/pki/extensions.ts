/** Object identifiers the CA uses, and decoders for the extensions it reads back. */
import { badRequest } from '../core/index.js';
import {
  children,
  ctx,
  readBoolean,
  readOid,
  readOnly,
  readSmallInt,
  TAG,
  value,
  type Tlv,
} from './der.js';
import { formatIp } from './ip.js';

export const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

/** Limits on what one certificate or request may name. */
export const MAX_SANS = 64;
export const MAX_NAME_LENGTH = 2048;

export interface Extension {
  oid: string;
  critical: boolean;
  /** The extnValue contents (the DER the OCTET STRING wraps). */
  value: Buffer;
}

/** Decodes `Extensions ::= SEQUENCE OF Extension`, refusing duplicates (RFC 5280 4.2). */
export function readExtensions(buf: Buffer, seq: Tlv, what: string): Extension[] {
  if (seq.tag !== TAG.sequence) throw badRequest(`${what}: malformed extensions`, what);
  const out: Extension[] = [];
  for (const ext of children(buf, seq, what)) {
    if (ext.tag !== TAG.sequence) throw badRequest(`${what}: malformed extension`, what);
    const parts = children(buf, ext, what);
    if (parts.length < 2 || parts.length > 3)
      throw badRequest(`${what}: malformed extension`, what);
    const oid = readOid(buf, parts[0]!, what);
    const critical = parts.length === 3 ? readBoolean(buf, parts[1]!, what) : false;
    const octets = parts[parts.length - 1]!;
    if (octets.tag !== TAG.octetString)
      throw badRequest(`${what}: malformed extension ${oid}`, what);
    if (out.some((e) => e.oid === oid))
      throw badRequest(`${what}: extension ${oid} appears more than once`, what);
    out.push({ oid, critical, value: value(buf, octets) });
  }
  return out;
}

export interface SubjectAltNames {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  /** Kinds of name the CA never issues (email, otherName, directoryName, ...). */
  other: string[];
}

const GENERAL_NAME_KINDS = [
  'otherName',
  'rfc822Name',
  'dNSName',
  'x400Address',
  'directoryName',
  'ediPartyName',
  'uniformResourceIdentifier',
  'iPAddress',
  'registeredID',
];

function ascii(bytes: Buffer, what: string, kind: string): string {
  if (bytes.length === 0 || bytes.length > MAX_NAME_LENGTH)
    throw badRequest(`${what}: ${kind} SAN is empty or longer than ${MAX_NAME_LENGTH}`, what);
  // IA5String: printable ASCII only (control characters could smuggle separators).
  if (!bytes.every((b) => b > 0x20 && b < 0x7f))
    throw badRequest(`${what}: ${kind} SAN has characters outside printable ASCII`, what);
  return bytes.toString('latin1');
}

/** Decodes a subjectAltName extension value (GeneralNames). */
export function readSubjectAltNames(der: Buffer, what: string): SubjectAltNames {
  const out: SubjectAltNames = { uris: [], dnsNames: [], ipAddresses: [], other: [] };
  const top = readSeq(der, what, 'subjectAltName');
  const names = children(der, top, what);
  if (names.length === 0) throw badRequest(`${what}: empty subjectAltName`, what);
  if (names.length > MAX_SANS) throw badRequest(`${what}: more than ${MAX_SANS} SANs`, what);
  for (const n of names) {
    const v = value(der, n);
    if (n.tag === ctx(6)) out.uris.push(ascii(v, what, 'URI'));
    else if (n.tag === ctx(2)) out.dnsNames.push(ascii(v, what, 'DNS'));
    else if (n.tag === ctx(7)) {
      const ip = formatIp(v);
      if (ip === undefined) throw badRequest(`${what}: IP SAN is not 4 or 16 bytes`, what);
      out.ipAddresses.push(ip);
    } else if ((n.tag & 0xc0) === 0x80) {
      out.other.push(GENERAL_NAME_KINDS[n.tag & 0x1f] ?? `tag ${n.tag & 0x1f}`);
    } else throw badRequest(`${what}: malformed subjectAltName`, what);
  }
  return out;
}

/** Decodes a basicConstraints extension value. */
export function readBasicConstraints(
  der: Buffer,
  what: string,
): { isCA: boolean; pathLen: number | undefined } {
  const top = readSeq(der, what, 'basicConstraints');
  const parts = children(der, top, what);
  let i = 0;
  let isCA = false;
  if (parts[i]?.tag === TAG.boolean) isCA = readBoolean(der, parts[i++]!, what);
  let pathLen: number | undefined;
  if (parts[i]?.tag === TAG.integer) pathLen = readSmallInt(der, parts[i++]!, what, 'pathLen');
  if (i !== parts.length) throw badRequest(`${what}: malformed basicConstraints`, what);
  return { isCA, pathLen };
}

/** Decodes an extKeyUsage extension value: the purpose OIDs (RFC 5280 4.2.1.12). */
export function readExtendedKeyUsage(der: Buffer, what: string): string[] {
  const top = readSeq(der, what, 'extKeyUsage');
  const purposes = children(der, top, what);
  if (purposes.length === 0) throw badRequest(`${what}: empty extKeyUsage`, what);
  return purposes.map((p) => readOid(der, p, what));
}

/** The keyIdentifier of an authorityKeyIdentifier extension value, if it carries one. */
export function readAuthorityKeyId(der: Buffer, what: string): Buffer | undefined {
  const top = readSeq(der, what, 'authorityKeyIdentifier');
  const first = children(der, top, what)[0];
  return first?.tag === ctx(0) ? Buffer.from(value(der, first)) : undefined;
}

/** The key identifier of a subjectKeyIdentifier extension value. */
export function readSubjectKeyId(der: Buffer, what: string): Buffer {
  const t = readWhole(der, what, 'subjectKeyIdentifier');
  if (t.tag !== TAG.octetString || t.end === t.valueStart)
    throw badRequest(`${what}: malformed subjectKeyIdentifier`, what);
  return Buffer.from(value(der, t));
}

function readWhole(der: Buffer, what: string, field: string): Tlv {
  try {
    return readOnly(der, what);
  } catch {
    throw badRequest(`${what}: malformed ${field}`, what);
  }
}

function readSeq(der: Buffer, what: string, field: string): Tlv {
  const t = readWhole(der, what, field);
  if (t.tag !== TAG.sequence) throw badRequest(`${what}: malformed ${field}`, what);
  return t;
}
