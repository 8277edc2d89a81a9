/**
 * X.509 certificates with EC P-256 keys, built with node-forge's ASN.1 encoder and signed with
 * node:crypto (node-forge signs only RSA). Enough for a mesh CA: self-signed roots, and leaves
 * for a public key with a SPIFFE URI SAN, client+server auth, and key identifiers that chain.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;

const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

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
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const parsed = asn1.fromDer(bin(spki));
  const bitString = (parsed.value as Node[])[1]!.value as string;
  return createHash('sha1')
    .update(Buffer.from(bitString.slice(1), 'binary'))
    .digest();
}

export interface CertificateSpec {
  serial: Buffer;
  subjectCN: string;
  issuerCN: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  /** The signer's private key and public key (for the authority key id). */
  signerKey: KeyObject;
  signerPublicKey: KeyObject;
  isCA: boolean;
  /** URI SANs (SPIFFE ids). */
  uris?: string[];
  /** DNS SANs. */
  dnsNames?: string[];
}

/** Builds and signs a certificate; returns it as PEM. */
export function issueCertificate(spec: CertificateSpec): string {
  const sigAlg = seq([oid(OID.ecdsaWithSHA256)]);
  const spkiDer = spec.publicKey.export({ type: 'spki', format: 'der' });
  const keyUsageBits = spec.isCA
    ? bits('\x06', 1) // keyCertSign | cRLSign
    : bits('\xb8', 3); // digitalSignature | keyEncipherment | dataEncipherment | keyAgreement
  const exts: Node[] = [
    extension(OID.basicConstraints, true, seq(spec.isCA ? [bool(true)] : [])),
    extension(OID.keyUsage, true, keyUsageBits),
    extension(OID.subjectKeyId, false, octets(bin(keyId(spec.publicKey)))),
    extension(
      OID.authorityKeyId,
      false,
      seq([asn1.create(C.CONTEXT_SPECIFIC, 0, false, bin(keyId(spec.signerPublicKey)))]),
    ),
  ];
  if (!spec.isCA)
    exts.push(extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth), oid(OID.clientAuth)])));
  const sans: Node[] = [
    ...(spec.uris ?? []).map((u) => asn1.create(C.CONTEXT_SPECIFIC, 6, false, u)),
    ...(spec.dnsNames ?? []).map((d) => asn1.create(C.CONTEXT_SPECIFIC, 2, false, d)),
  ];
  if (sans.length > 0) exts.push(extension(OID.subjectAltName, false, seq(sans)));
  const tbs = seq([
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [integer(Buffer.from([2]))]),
    integer(spec.serial),
    sigAlg,
    name(spec.issuerCN),
    seq([time(spec.notBefore), time(spec.notAfter)]),
    name(spec.subjectCN),
    asn1.fromDer(bin(spkiDer)),
    asn1.create(C.CONTEXT_SPECIFIC, 3, true, [seq(exts)]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, spec.signerKey); // DER-encoded ECDSA signature
  const cert = seq([tbs, sigAlg, bits(bin(signature))]);
  const der = Buffer.from(asn1.toDer(cert).getBytes(), 'binary');
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** Public key of a private key (for self-signed roots). */
export function publicOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
