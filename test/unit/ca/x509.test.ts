/** Certificates made by the CA's X.509 builder, checked by Node's own parser and by real mTLS. */
import { expect } from 'chai';
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { issueCertificate, publicOf } from '../../../src/pki/x509.js';

const TD = '11111111-2222-3333-4444-555555555555.consul';
const spiffe = (svc: string): string => `spiffe://${TD}/ns/default/dc/dc1/svc/${svc}`;

function ecKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

function makeCA(cn: string): { key: KeyObject; pem: string } {
  const key = ecKey();
  const now = Date.now();
  const pem = issueCertificate({
    serial: randomBytes(16),
    subjectCN: cn,
    issuerCN: cn,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    publicKey: publicOf(key),
    signerKey: key,
    signerPublicKey: publicOf(key),
    isCA: true,
    uris: [`spiffe://${TD}`],
  });
  return { key, pem };
}

function makeLeaf(ca: { key: KeyObject }, svc: string): { key: KeyObject; pem: string } {
  const key = ecKey();
  const now = Date.now();
  const pem = issueCertificate({
    serial: randomBytes(8),
    subjectCN: '',
    issuerCN: 'Trellis CA',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    publicKey: publicOf(key),
    signerKey: ca.key,
    signerPublicKey: publicOf(ca.key),
    isCA: false,
    uris: [spiffe(svc)],
  });
  return { key, pem };
}

describe('CA: X.509 certificates', () => {
  const ca = makeCA('Trellis CA');

  it('makes a self-signed EC P-256 root and leaves that chain to it', () => {
    const root = new X509Certificate(ca.pem);
    expect(root.ca).to.equal(true);
    expect(root.verify(root.publicKey)).to.equal(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    const leaf = new X509Certificate(makeLeaf(ca, 'web').pem);
    expect(leaf.ca).to.equal(false);
    expect(leaf.checkIssued(root)).to.equal(true);
    expect(leaf.verify(root.publicKey)).to.equal(true);
    expect(leaf.subjectAltName).to.equal(`URI:${spiffe('web')}`);
    expect(leaf.keyUsage).to.include.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('passes a real mutual-TLS handshake, and a foreign CA does not', async () => {
    const api = makeLeaf(ca, 'api');
    const web = makeLeaf(ca, 'web');
    const seen: string[] = [];
    const server = createServer(
      {
        key: api.key.export({ type: 'pkcs8', format: 'pem' }),
        cert: api.pem,
        ca: ca.pem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      (s: TLSSocket) => {
        seen.push(s.getPeerX509Certificate()?.subjectAltName ?? '');
        s.end('ok');
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dial = (client: { key: KeyObject; pem: string }): Promise<string> =>
      new Promise((resolve) => {
        const s = connect({
          host: '127.0.0.1',
          port,
          key: client.key.export({ type: 'pkcs8', format: 'pem' }),
          cert: client.pem,
          ca: ca.pem,
          checkServerIdentity: () => undefined,
        });
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('end', () => resolve(data));
        s.on('error', (e) => resolve(`error: ${e.message}`));
        s.on('close', () => resolve(data || 'closed'));
      });
    try {
      expect(await dial(web)).to.equal('ok');
      expect(seen).to.deep.equal([`URI:${spiffe('web')}`]);
      const foreign = makeLeaf(makeCA('Other CA'), 'web');
      expect(await dial(foreign)).to.not.equal('ok');
      expect(seen).to.have.length(1);
    } finally {
      server.close();
    }
  });
});
