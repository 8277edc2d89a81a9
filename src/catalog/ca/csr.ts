/**
 * PKCS#10 certificate requests with EC keys: the agent makes one (its key never leaves the
 * host), the CA checks it. node-forge reads only RSA requests, so this walks the ASN.1 itself.
 * The CA takes nothing from a request but its public key (the identity comes from the catalog),
 * so parsing checks the proof of possession and the shape, and ignores the subject and SANs.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { badRequest } from '../../core/index.js';

const { asn1 } = forge;
const T = asn1.Type;
const C = asn1.Class;
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const MAX_CSR_BYTES = 16 * 1024;

type Node = forge.asn1.Asn1;
const bin = (b: Buffer): string => b.toString('binary');

/** Makes a CSR (PEM) for `privateKey`, naming the SPIFFE id it asks for. */
export function createCsr(privateKey: KeyObject, uri: string): string {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const sanExt = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer('2.5.29.17').getBytes()),
    asn1.create(
      C.UNIVERSAL,
      T.OCTETSTRING,
      false,
      asn1
        .toDer(
          asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
            asn1.create(C.CONTEXT_SPECIFIC, 6, false, uri),
          ]),
        )
        .getBytes(),
    ),
  ]);
  const extReq = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer('1.2.840.113549.1.9.14').getBytes()),
    asn1.create(C.UNIVERSAL, T.SET, true, [asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [sanExt])]),
  ]);
  const info = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    asn1.create(C.UNIVERSAL, T.INTEGER, false, '\x00'),
    asn1.create(C.UNIVERSAL, T.SEQUENCE, true, []),
    asn1.fromDer(bin(spki)),
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [extReq]),
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const sig = sign('sha256', infoDer, privateKey);
  const csr = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    info,
    asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
      asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(ECDSA_SHA256).getBytes()),
    ]),
    asn1.create(C.UNIVERSAL, T.BITSTRING, false, `\x00${bin(sig)}`),
  ]);
  const b64 = Buffer.from(asn1.toDer(csr).getBytes(), 'binary')
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`;
}

function pemBody(pem: string): Buffer {
  const m =
    /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(
      pem,
    );
  if (!m) throw badRequest('CSR: not a PEM "CERTIFICATE REQUEST"', 'CSR');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/**
 * The public key of a CSR whose signature proves possession of the matching private key. The
 * key must be EC P-256. Anything malformed is a 400 naming the CSR.
 */
export function csrPublicKey(pem: string): KeyObject {
  if (pem.length > MAX_CSR_BYTES)
    throw badRequest(`CSR: larger than ${MAX_CSR_BYTES} bytes`, 'CSR');
  const der = pemBody(pem);
  let root: Node;
  try {
    root = asn1.fromDer(bin(der), true);
  } catch {
    throw badRequest('CSR: not valid DER', 'CSR');
  }
  const parts = root.value;
  if (!Array.isArray(parts) || parts.length !== 3)
    throw badRequest('CSR: not a PKCS#10 request', 'CSR');
  const [info, alg] = parts as [Node, Node, Node];
  const infoParts = info.value;
  if (!Array.isArray(infoParts) || infoParts.length < 3)
    throw badRequest('CSR: malformed request info', 'CSR');
  const algOid =
    Array.isArray(alg.value) && alg.value[0]
      ? asn1.derToOid(forge.util.createBuffer(alg.value[0].value as string))
      : '';
  if (algOid !== ECDSA_SHA256)
    throw badRequest('CSR: signature algorithm must be ECDSA with SHA-256', 'CSR');
  let publicKey: KeyObject;
  try {
    const spkiDer = Buffer.from(asn1.toDer(infoParts[2] as Node).getBytes(), 'binary');
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch {
    throw badRequest('CSR: unreadable public key', 'CSR');
  }
  if (
    publicKey.asymmetricKeyType !== 'ec' ||
    publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw badRequest('CSR: the key must be EC P-256', 'CSR');
  }
  // The signature covers the request info exactly as sent, so take its bytes from the input
  // rather than re-encoding the parsed form.
  const outer = readTlv(der, 0);
  const infoTlv = readTlv(der, outer.valueStart);
  const infoDer = der.subarray(outer.valueStart, infoTlv.end);
  const algTlv = readTlv(der, infoTlv.end);
  const sigTlv = readTlv(der, algTlv.end);
  if (der[algTlv.end] !== 0x03 || sigTlv.end - sigTlv.valueStart < 2)
    throw badRequest('CSR: malformed signature', 'CSR');
  const sig = der.subarray(sigTlv.valueStart + 1, sigTlv.end);
  if (!verify('sha256', infoDer, publicKey, sig))
    throw badRequest('CSR: signature does not match its key', 'CSR');
  return publicKey;
}

/** One DER tag-length-value at `at`: where its value starts and where it ends. */
function readTlv(buf: Buffer, at: number): { valueStart: number; end: number } {
  if (at + 2 > buf.length) throw badRequest('CSR: truncated', 'CSR');
  let len = buf[at + 1]!;
  let valueStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || valueStart + n > buf.length) throw badRequest('CSR: bad length', 'CSR');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[valueStart + i]!;
    valueStart += n;
  }
  const end = valueStart + len;
  if (end > buf.length) throw badRequest('CSR: truncated', 'CSR');
  return { valueStart, end };
}
