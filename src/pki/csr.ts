/**
 * PKCS#10 certificate requests with EC keys: the agent makes one (its key never leaves the
 * host), the CA checks it. node-forge reads only RSA requests, so requests are walked with our
 * own DER reader; anything malformed is a 400 naming the CSR and what was wrong with it.
 * The CA takes only the public key from a request as-is; the names a request asks for are
 * reported so the signer can refuse requests for names it will not grant.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { badRequest } from '../core/index.js';
import {
  children,
  ctx,
  expectTag,
  readBitStringBytes,
  readOid,
  readOnly,
  readSmallInt,
  TAG,
  whole,
} from './der.js';
import { OID, readBasicConstraints, readExtensions, readSubjectAltNames } from './extensions.js';
import { parseIp } from './ip.js';
import { pemDecodeAll, pemEncode } from './pem.js';

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;
export const MAX_CSR_BYTES = 16 * 1024;
const WHAT = 'CSR';

type Node = forge.asn1.Asn1;
const bin = (b: Buffer): string => b.toString('binary');
const oidNode = (o: string): Node =>
  asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(o).getBytes());
const seq = (items: Node[]): Node => asn1.create(C.UNIVERSAL, T.SEQUENCE, true, items);

export interface CsrOptions {
  /** Extra DNS SANs to ask for (granted only if the CA allows them). */
  dnsNames?: string[];
  /** Extra IP SANs to ask for. */
  ipAddresses?: string[];
}

/**
 * Makes a CSR (PEM) for `privateKey`, naming the SPIFFE id it asks for. EC keys sign with
 * ECDSA-SHA256; RSA keys (which the CA refuses) with RSA-SHA256, so refusals can be tested.
 */
export function createCsr(privateKey: KeyObject, uri: string, opts: CsrOptions = {}): string {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const names: Node[] = [asn1.create(C.CONTEXT_SPECIFIC, 6, false, uri)];
  for (const d of opts.dnsNames ?? []) names.push(asn1.create(C.CONTEXT_SPECIFIC, 2, false, d));
  for (const ip of opts.ipAddresses ?? []) {
    const bytes = parseIp(ip);
    if (!bytes) throw badRequest(`CSR: "${ip}" is not an IP address`, 'ipAddresses');
    names.push(asn1.create(C.CONTEXT_SPECIFIC, 7, false, bin(bytes)));
  }
  const sanExt = seq([
    oidNode(OID.subjectAltName),
    asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, asn1.toDer(seq(names)).getBytes()),
  ]);
  const extReq = seq([
    oidNode(OID.extensionRequest),
    asn1.create(C.UNIVERSAL, T.SET, true, [seq([sanExt])]),
  ]);
  const info = seq([
    asn1.create(C.UNIVERSAL, T.INTEGER, false, '\x00'),
    seq([]),
    asn1.fromDer(bin(spki)),
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [extReq]),
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const rsa = privateKey.asymmetricKeyType === 'rsa';
  const sig = sign('sha256', infoDer, privateKey);
  const alg = rsa
    ? seq([oidNode(OID.sha256WithRSA), asn1.create(C.UNIVERSAL, T.NULL, false, '')])
    : seq([oidNode(OID.ecdsaWithSHA256)]);
  const csr = seq([info, alg, asn1.create(C.UNIVERSAL, T.BITSTRING, false, `\x00${bin(sig)}`)]);
  return pemEncode('CERTIFICATE REQUEST', Buffer.from(asn1.toDer(csr).getBytes(), 'binary'));
}

/** What a request contains, after its proof of possession has been checked. */
export interface CsrInfo {
  /** EC P-256 public key the request proved possession of. */
  publicKey: KeyObject;
  /** The same key as SubjectPublicKeyInfo DER, as sent (saves re-exporting it). */
  spkiDer: Buffer;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  /** Whether the request asks for basicConstraints CA:true. */
  isCA: boolean;
  /** OIDs of requested extensions other than subjectAltName and basicConstraints. */
  otherExtensions: string[];
  /** Kinds of SAN other than URI, DNS and IP (email, otherName, ...). */
  otherNameTypes: string[];
}

/** SubjectPublicKeyInfo of an uncompressed P-256 key, up to the point: SEQ{SEQ{ecPublicKey, prime256v1}, BIT STRING (0 unused) 04…}. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * The key of a SubjectPublicKeyInfo. The common case (uncompressed P-256) goes through a JWK,
 * which OpenSSL imports about twice as fast as DER and still checks the point is on the curve;
 * this is the most expensive step of signing a leaf.
 */
function importPublicKey(spki: Buffer): KeyObject {
  if (
    spki.length === P256_SPKI_PREFIX.length + 65 &&
    spki.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX) &&
    spki[P256_SPKI_PREFIX.length] === 0x04
  ) {
    const at = P256_SPKI_PREFIX.length + 1;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: spki.subarray(at, at + 32).toString('base64url'),
        y: spki.subarray(at + 32, at + 64).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

function csrDer(pem: string): Buffer {
  if (pem.length > MAX_CSR_BYTES) throw badRequest(`CSR: larger than ${MAX_CSR_BYTES} bytes`, WHAT);
  const found = [
    ...pemDecodeAll(pem, 'CERTIFICATE REQUEST', WHAT),
    ...pemDecodeAll(pem, 'NEW CERTIFICATE REQUEST', WHAT),
  ];
  if (found.length === 0) throw badRequest('CSR: not a PEM "CERTIFICATE REQUEST"', WHAT);
  if (found.length > 1) throw badRequest('CSR: more than one request in the PEM text', WHAT);
  return found[0]!;
}

/**
 * Parses a CSR and checks its signature with its own key (proof of possession). The key must be
 * EC P-256 and the signature ECDSA-SHA256. Malformed requests are a 400 that says why.
 */
export function inspectCsr(pem: string): CsrInfo {
  const der = csrDer(pem);
  const outer = readOnly(der, WHAT);
  const parts = outer.tag === TAG.sequence ? children(der, outer, WHAT) : [];
  if (
    parts.length !== 3 ||
    parts[0]!.tag !== TAG.sequence ||
    parts[1]!.tag !== TAG.sequence ||
    parts[2]!.tag !== TAG.bitString
  )
    throw badRequest('CSR: not a PKCS#10 certification request', WHAT);
  const [info, alg, sigBits] = [parts[0]!, parts[1]!, parts[2]!];

  const fields = children(der, info, WHAT);
  if (readSmallInt(der, fields[0], WHAT, 'version') !== 0)
    throw badRequest('CSR: unsupported request version', WHAT);
  expectTag(fields[1], TAG.sequence, WHAT, 'subject');
  const spki = expectTag(fields[2], TAG.sequence, WHAT, 'public key');
  const attrs = fields[3];
  if (fields.length > 4 || (attrs && attrs.tag !== ctx(0, true)))
    throw badRequest('CSR: malformed request attributes', WHAT);

  let publicKey: KeyObject;
  try {
    publicKey = importPublicKey(whole(der, spki));
  } catch {
    throw badRequest('CSR: unreadable public key', WHAT);
  }
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (publicKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1')
    throw badRequest(
      `CSR: the key must be EC P-256, not ${publicKey.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}`,
      WHAT,
    );
  const algParts = children(der, alg, WHAT);
  const algOid = algParts[0] ? readOid(der, algParts[0], WHAT) : '';
  if (algOid !== OID.ecdsaWithSHA256 || algParts.length !== 1)
    throw badRequest('CSR: signature algorithm must be ECDSA with SHA-256', WHAT);
  // The signature covers the request info exactly as sent.
  const sig = readBitStringBytes(der, sigBits, WHAT, 'signature');
  let ok = false;
  try {
    ok = verify('sha256', whole(der, info), publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw badRequest('CSR: signature does not match its key', WHAT);

  const out: CsrInfo = {
    publicKey,
    spkiDer: Buffer.from(whole(der, spki)),
    uris: [],
    dnsNames: [],
    ipAddresses: [],
    isCA: false,
    otherExtensions: [],
    otherNameTypes: [],
  };
  let sawExtensions = false;
  for (const attr of attrs ? children(der, attrs, WHAT) : []) {
    const [type, values, ...rest] = attr.tag === TAG.sequence ? children(der, attr, WHAT) : [];
    if (!type || !values || rest.length > 0 || values.tag !== TAG.set)
      throw badRequest('CSR: malformed request attribute', WHAT);
    if (readOid(der, type, WHAT) !== OID.extensionRequest) continue; // e.g. challengePassword
    const exts = children(der, values, WHAT);
    if (sawExtensions || exts.length !== 1)
      throw badRequest('CSR: more than one set of requested extensions', WHAT);
    sawExtensions = true;
    for (const ext of readExtensions(der, exts[0]!, WHAT)) {
      if (ext.oid === OID.subjectAltName) {
        const sans = readSubjectAltNames(ext.value, WHAT);
        out.uris = sans.uris;
        out.dnsNames = sans.dnsNames;
        out.ipAddresses = sans.ipAddresses;
        out.otherNameTypes = sans.other;
      } else if (ext.oid === OID.basicConstraints) {
        out.isCA = readBasicConstraints(ext.value, WHAT).isCA;
      } else out.otherExtensions.push(ext.oid);
    }
  }
  return out;
}

/**
 * The public key of a CSR whose signature proves possession of the matching private key. The
 * key must be EC P-256. Anything malformed is a 400 naming the CSR.
 */
export function csrPublicKey(pem: string): KeyObject {
  return inspectCsr(pem).publicKey;
}
