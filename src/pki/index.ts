/** The mesh certificate authority's crypto: roots, cross-signing, CSRs, leaves and checks. */
export { readCertificate, type CertInfo } from './certinfo.js';
export {
  crossSign,
  crossSignCertificate,
  reverseCrossSign,
  type CrossSignOptions,
} from './cross-sign.js';
export {
  createCsr,
  csrPublicKey,
  inspectCsr,
  MAX_CSR_BYTES,
  type CsrInfo,
  type CsrOptions,
} from './csr.js';
export {
  caFingerprint,
  colonHex,
  fingerprintMatches,
  serialHex,
  sha1Fingerprint,
} from './fingerprint.js';
export { OID } from './extensions.js';
export { canonicalIp, formatIp, parseIp } from './ip.js';
export { parseCert, pemEncode, splitPemChain } from './pem.js';
export {
  describeRoot,
  generateRoot,
  keyMatchesCert,
  loadPrivateKey,
  rootCommonName,
  ROOT_NAME,
  type CARootInfo,
  type GeneratedRoot,
  type GenerateRootOptions,
} from './roots.js';
export { randomRootSerial, randomSerial, serialToNumber } from './serial.js';
export { signLeaf, type SignedLeaf, type SignLeafOptions } from './signing.js';
export { verifyChain } from './verify.js';
export {
  issueCertificate,
  keyId,
  publicOf,
  type CertificateSpec,
  type KeyUsageBit,
} from './x509.js';
