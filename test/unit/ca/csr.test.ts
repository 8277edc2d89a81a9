import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createCsr, csrPublicKey, inspectCsr } from '../../../src/pki/csr.js';
import { isMeshError } from '../../../src/core/index.js';
import { rawCsr, type RawCsrSpec } from './helpers.js';

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

  it('reports what a request asks for', () => {
    const own = inspectCsr(createCsr(key, uri, { dnsNames: ['localhost'], ipAddresses: ['::1'] }));
    expect(own).to.include({ isCA: false });
    expect(own.uris).to.deep.equal([uri]);
    expect(own.dnsNames).to.deep.equal(['localhost']);
    expect(own.ipAddresses).to.deep.equal(['::1']);
    expect(own.otherExtensions).to.deep.equal([]);
    const odd = inspectCsr(
      rawCsr(key, {
        uris: [uri, 'spiffe://x/y'],
        ips: [Buffer.from([10, 0, 0, 1]), Buffer.from('20010db8000000000000000000000001', 'hex')],
        emails: ['a@b.c'],
        ca: true,
        extraExtensions: ['1.2.3.4'],
      }),
    );
    expect(odd.uris).to.deep.equal([uri, 'spiffe://x/y']);
    expect(odd.ipAddresses).to.deep.equal(['10.0.0.1', '2001:db8::1']);
    expect(odd.isCA).to.equal(true);
    expect(odd.otherExtensions).to.deep.equal(['1.2.3.4']);
    expect(odd.otherNameTypes).to.deep.equal(['rfc822Name']);
  });

  it('refuses malformed SANs with a 400', () => {
    const cases: [RawCsrSpec, string][] = [
      [{ ips: [Buffer.from([1, 2, 3])] }, 'IP SAN is not 4 or 16 bytes'],
      [{ uris: ['spiffe://a b'] }, 'printable ASCII'],
      [{ uris: Array.from({ length: 65 }, (_, i) => `spiffe://t/${i}`) }, 'more than 64 SANs'],
    ];
    for (const [spec, msg] of cases) {
      let err: unknown;
      try {
        inspectCsr(rawCsr(key, spec));
      } catch (e) {
        err = e;
      }
      expect((err as { status: number }).status, msg).to.equal(400);
      expect((err as Error).message).to.include(msg);
    }
  });

  it('answers every truncation and single-byte corruption with a 400, never a TypeError', () => {
    const good = createCsr(key, uri, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const der = Buffer.from(good.split('\n').slice(1, -2).join(''), 'base64');
    const pem = (b: Buffer): string =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const variants: Buffer[] = [];
    for (let n = 0; n < der.length; n++) variants.push(der.subarray(0, n));
    for (let i = 0; i < der.length; i++)
      for (const v of [0x00, 0xff, 0x80, der[i]! ^ 0x01]) {
        const b = Buffer.from(der);
        b[i] = v;
        if (!b.equals(der)) variants.push(b);
      }
    for (const b of variants) {
      try {
        inspectCsr(pem(b));
      } catch (e) {
        if (!isMeshError(e) || e.status !== 400) throw e;
      }
    }
  });
});
