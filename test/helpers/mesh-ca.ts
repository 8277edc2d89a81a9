/** A real mesh CA for proxy tests: a root from src/pki and leaves for any service name. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  createCsr,
  generateRoot,
  issueCertificate,
  loadPrivateKey,
  publicOf,
  readCertificate,
  signLeaf,
  type KeyUsageBit,
} from '../../src/pki/index.js';

export const TEST_TD = '11111111-2222-3333-4444-555555555555.consul';
export const spiffeUri = (svc: string, td = TEST_TD): string =>
  `spiffe://${td}/ns/default/dc/dc1/svc/${svc}`;

export interface TestLeaf {
  certChain: string;
  key: string;
}

/** What a hand-made certificate carries (for certificates the mesh must refuse). */
export interface CustomLeaf {
  uris: string[];
  isCA?: boolean;
  keyUsage?: KeyUsageBit[];
  /** [] omits the extension. */
  extKeyUsage?: ('serverAuth' | 'clientAuth')[];
}

export function testCa(td = TEST_TD): {
  rootPem: string;
  leaf(svc: string): TestLeaf;
  /** A certificate signed by this root (the CA's own issuing code) with exactly `spec`. */
  custom(spec: CustomLeaf): TestLeaf;
} {
  const root = generateRoot({
    clusterId: td.slice(0, 36),
    trustDomain: td,
    ttlMs: 24 * 3600_000,
    now: new Date(),
  });
  const rootKey = loadPrivateKey(root.keyPem);
  const rootInfo = readCertificate(root.certPem);
  const newKey = (): ReturnType<typeof generateKeyPairSync> =>
    generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    rootPem: root.certPem,
    leaf(svc) {
      const { privateKey } = newKey();
      const signed = signLeaf({
        csrPem: createCsr(privateKey, spiffeUri(svc, td)),
        expectedUri: spiffeUri(svc, td),
        signerKey: rootKey,
        signerCertPem: root.certPem,
        ttlMs: 3600_000,
        now: new Date(),
      });
      return {
        certChain: signed.certPem,
        key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      };
    },
    custom(spec) {
      const { privateKey } = newKey();
      const now = Date.now();
      const certPem = issueCertificate({
        serial: randomBytes(16),
        issuerName: rootInfo.subjectName,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3600_000),
        publicKey: publicOf(privateKey),
        signerKey: rootKey,
        signerPublicKey: rootInfo.publicKey,
        isCA: spec.isCA ?? false,
        uris: spec.uris,
        ...(spec.keyUsage ? { keyUsage: spec.keyUsage } : {}),
        ...(spec.extKeyUsage ? { extKeyUsage: spec.extKeyUsage } : {}),
      });
      return {
        certChain: certPem,
        key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      };
    },
  };
}
