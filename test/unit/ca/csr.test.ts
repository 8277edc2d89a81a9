import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createCsr, csrPublicKey } from '../../../src/catalog/ca/csr.js';

describe('CA: certificate requests', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const uri = 'spiffe://td.consul/ns/default/dc/dc1/svc/web';

  it('reads back the key of a request the agent made, proving possession', () => {
    const pub = csrPublicKey(createCsr(key, uri));
    const want = createPublicKey(key).export({ type: 'spki', format: 'der' });
    expect(pub.export({ type: 'spki', format: 'der' }).equals(want)).to.equal(true);
  });

  it('refuses tampered, foreign-curve and malformed requests with a 400', () => {
    const good = createCsr(key, uri);
    const body = Buffer.from(good.split('\n').slice(1, -2).join(''), 'base64');
    body[body.length - 5] = body[body.length - 5]! ^ 0x01; // flip a bit of the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${body.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const p384 = createCsr(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, uri);
    for (const [pem, msg] of [
      [tampered, 'CSR'],
      ['not a csr', 'PEM'],
      ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', 'CSR'],
      [p384, 'P-256'],
    ] as const) {
      let err: unknown;
      try {
        csrPublicKey(pem);
      } catch (e) {
        err = e;
      }
      expect(err, msg).to.be.instanceOf(Error);
      expect((err as { status: number }).status).to.equal(400);
      expect((err as Error).message).to.include(msg);
    }
  });
});
