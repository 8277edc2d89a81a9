/**
 * X.509 certificates with EC P-256 keys, built with node-forge's ASN.1 encoder and signed with
 * node:crypto (node-forge signs only RSA). Enough for a mesh CA: self-signed roots, cross-signed
 * copies of roots, and leaves for a public key with SPIFFE URI (and optional DNS/IP) SANs,
 * client+server auth, and key identifiers that chain.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { badRequest } from '../core/index.js';
import { OID } from './extensions.js';
import { parseIp } from './ip.js';
import { pemEncode } from './pem.js';

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;

type Node = forge.asn1.Asn1;

const seq = (items: Node[]): Node => asn1.create(C.UNIVERSAL, T.SEQUENCE, true, items);
const oid = (o: string): Node =>
  asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(o).getBytes());
const bool = (b: boolean): Node => asn1.create(C.UNIVERSAL, T.BOOLEAN, false, b ? '\xff' : '\x00');
const octets = (bytes: string): Node => asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, bytes);
const bits = (bytes: string, unused = 0): Node =>
  asn1.create(C.UNIVERSAL, T.BITSTRING, false, String.fromCharCode(unused) + bytes);
const bin = (b: Buffer): string => b.toString('binary');

/** A positive INTEGER from big-endian bytes (a leading 0 keeps the sign bit clear). */
function integer(bytes: Buffer): Node {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return asn1.create(C.UNIVERSAL, T.INTEGER, false, bin(b));
}

function time(d: Date): Node {
  // RFC 5280: UTCTime through 2049, GeneralizedTime after.
  return d.getUTCFullYear() < 2050
    ? asn1.create(C.UNIVERSAL, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(C.UNIVERSAL, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function name(cn: string): Node {
  if (!cn) return seq([]);
  const atv = seq([
    oid(OID.commonName),
    asn1.create(C.UNIVERSAL, T.UTF8, false, forge.util.encodeUtf8(cn)),
  ]);
  return seq([asn1.create(C.UNIVERSAL, T.SET, true, [atv])]);
}

function extension(id: string, critical: boolean, value: Node): Node {
  const der = asn1.toDer(value).getBytes();
  return seq(critical ? [oid(id), bool(true), octets(der)] : [oid(id), octets(der)]);
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280 method 1). */
export function keyId(publicKey: KeyObject): Buffer {
  return keyIdOfSpki(publicKey.export({ type: 'spki', format: 'der' }));
}

/** keyId from SubjectPublicKeyInfo DER. */
export function keyIdOfSpki(spki: Buffer): Buffer {
  const parsed = asn1.fromDer(bin(spki));
  const bitString = (parsed.value as Node[])[1]!.value as string;
  return createHash('sha1')
    .update(Buffer.from(bitString.slice(1), 'binary'))
    .digest();
}

export interface CertificateSpec {
  serial: Buffer;
  /** publicKey as SubjectPublicKeyInfo DER, when the caller already has it. */
  publicKeyDer?: Buffer;
  /** Subject common name; empty or absent for an empty subject. */
  subjectCN?: string;
  /** A DER subject Name to copy byte for byte (cross-signing); wins over subjectCN. */
  subjectName?: Buffer;
  /** Issuer common name, for certificates whose issuer has a CN-only subject. */
  issuerCN?: string;
  /** The issuer's DER subject Name, copied byte for byte; wins over issuerCN. */
  issuerName?: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  /** The signer's private key (EC). */
  signerKey: KeyObject;
  /** The signer's public key, for the authority key id when authorityKeyId is not given. */
  signerPublicKey?: KeyObject;
  /** The issuer's subject key id, when it was not computed by keyId() (a foreign root). */
  authorityKeyId?: Buffer;
  /** Overrides keyId(publicKey): a cross-signed copy must keep its original's identifier. */
  subjectKeyId?: Buffer;
  isCA: boolean;
  /** basicConstraints pathLenConstraint; CA certificates only. */
  pathLen?: number;
  /** URI SANs (SPIFFE ids). */
  uris?: string[];
  /** DNS SANs. */
  dnsNames?: string[];
  /** IP SANs, IPv4 or IPv6 text. */
  ipAddresses?: string[];
  /**
   * keyUsage bits to set instead of the defaults (a CA: keyCertSign, cRLSign; a leaf: the
   * signature and key agreement bits). Only for certificates the mesh must learn to refuse.
   */
  keyUsage?: KeyUsageBit[];
  /** extKeyUsage purposes instead of serverAuth + clientAuth on a leaf; [] omits the extension. */
  extKeyUsage?: ('serverAuth' | 'clientAuth')[];
}

export type KeyUsageBit =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

const KEY_USAGE_ORDER: readonly KeyUsageBit[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
];

/** A keyUsage BIT STRING with exactly `set` (DER: trailing zero bits are unused bits). */
function keyUsageBitString(set: readonly KeyUsageBit[]): Node {
  let byte = 0;
  for (const b of set) byte |= 0x80 >> KEY_USAGE_ORDER.indexOf(b);
  if (byte === 0) return bits('', 0);
  let unused = 0;
  while (((byte >> unused) & 1) === 0) unused++;
  return bits(String.fromCharCode(byte), unused);
}

function copiedName(der: Buffer, field: string): Node {
  let node: Node;
  try {
    node = asn1.fromDer(bin(der), true);
  } catch {
    throw badRequest(`certificate: ${field} is not a DER Name`, field);
  }
  // Chain building compares names byte for byte, so a copy must re-encode identically.
  if (asn1.toDer(node).getBytes() !== bin(der))
    throw badRequest(`certificate: ${field} does not re-encode identically`, field);
  return node;
}

function ipSan(text: string): Node {
  const bytes = parseIp(text);
  if (!bytes) throw badRequest(`certificate: "${text}" is not an IP address`, 'ipAddresses');
  return asn1.create(C.CONTEXT_SPECIFIC, 7, false, bin(bytes));
}

/** Builds and signs a certificate; returns it as PEM. */
export function issueCertificate(spec: CertificateSpec): string {
  if (spec.signerKey.asymmetricKeyType !== 'ec')
    throw badRequest('certificate: the signing key must be EC', 'signerKey');
  const akid =
    spec.authorityKeyId ?? (spec.signerPublicKey ? keyId(spec.signerPublicKey) : undefined);
  if (!akid) throw badRequest('certificate: need signerPublicKey or authorityKeyId', 'signer');
  if (
    spec.pathLen !== undefined &&
    (!spec.isCA || !Number.isInteger(spec.pathLen) || spec.pathLen < 0)
  )
    throw badRequest('certificate: pathLen needs a CA and a non-negative integer', 'pathLen');
  const sigAlg = seq([oid(OID.ecdsaWithSHA256)]);
  const spkiDer = spec.publicKeyDer ?? spec.publicKey.export({ type: 'spki', format: 'der' });
  const keyUsageBits = spec.keyUsage
    ? keyUsageBitString(spec.keyUsage)
    : spec.isCA
      ? bits('\x06', 1) // keyCertSign | cRLSign
      : bits('\xb8', 3); // digitalSignature | keyEncipherment | dataEncipherment | keyAgreement
  const basic: Node[] = spec.isCA ? [bool(true)] : [];
  if (spec.pathLen !== undefined)
    basic.push(integer(Buffer.from(spec.pathLen.toString(16).padStart(8, '0'), 'hex')));
  const exts: Node[] = [
    extension(OID.basicConstraints, true, seq(basic)),
    extension(OID.keyUsage, true, keyUsageBits),
    extension(OID.subjectKeyId, false, octets(bin(spec.subjectKeyId ?? keyIdOfSpki(spkiDer)))),
    extension(
      OID.authorityKeyId,
      false,
      seq([asn1.create(C.CONTEXT_SPECIFIC, 0, false, bin(akid))]),
    ),
  ];
  const purposes = spec.extKeyUsage ?? (spec.isCA ? [] : ['serverAuth', 'clientAuth']);
  if (purposes.length > 0)
    exts.push(extension(OID.extKeyUsage, false, seq(purposes.map((p) => oid(OID[p])))));
  const sans: Node[] = [
    ...(spec.uris ?? []).map((u) => asn1.create(C.CONTEXT_SPECIFIC, 6, false, u)),
    ...(spec.dnsNames ?? []).map((d) => asn1.create(C.CONTEXT_SPECIFIC, 2, false, d)),
    ...(spec.ipAddresses ?? []).map(ipSan),
  ];
  // RFC 5280: with an empty subject the SAN extension is critical.
  const emptySubject = !spec.subjectName && !spec.subjectCN;
  if (sans.length > 0) exts.push(extension(OID.subjectAltName, emptySubject, seq(sans)));
  const tbs = seq([
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [integer(Buffer.from([2]))]),
    integer(spec.serial),
    sigAlg,
    spec.issuerName ? copiedName(spec.issuerName, 'issuerName') : name(spec.issuerCN ?? ''),
    seq([time(spec.notBefore), time(spec.notAfter)]),
    spec.subjectName ? copiedName(spec.subjectName, 'subjectName') : name(spec.subjectCN ?? ''),
    asn1.fromDer(bin(spkiDer)),
    asn1.create(C.CONTEXT_SPECIFIC, 3, true, [seq(exts)]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, spec.signerKey); // DER-encoded ECDSA signature
  const cert = seq([tbs, sigAlg, bits(bin(signature))]);
  return pemEncode('CERTIFICATE', Buffer.from(asn1.toDer(cert).getBytes(), 'binary'));
}

/** Public key of a private key (for self-signed roots). */
export function publicOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
