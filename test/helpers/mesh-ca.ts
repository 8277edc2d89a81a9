/** A real mesh CA for proxy tests: a root from src/pki and leaves for any service name. */
import { generateKeyPairSync } from 'node:crypto';
import { createCsr, generateRoot, loadPrivateKey, signLeaf } from '../../src/pki/index.js';

export const TEST_TD = '11111111-2222-3333-4444-555555555555.consul';
export const spiffeUri = (svc: string, td = TEST_TD): string =>
  `spiffe://${td}/ns/default/dc/dc1/svc/${svc}`;

export interface TestLeaf {
  certChain: string;
  key: string;
}

export function testCa(td = TEST_TD): { rootPem: string; leaf(svc: string): TestLeaf } {
  const root = generateRoot({
    clusterId: td.slice(0, 36),
    trustDomain: td,
    ttlMs: 24 * 3600_000,
    now: new Date(),
  });
  const rootKey = loadPrivateKey(root.keyPem);
  return {
    rootPem: root.certPem,
    leaf(svc) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
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
  };
}
