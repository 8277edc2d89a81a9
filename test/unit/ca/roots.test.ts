/** Root generation: the certificate itself and the CARoot record served by /connect/ca/roots. */
import { expect } from 'chai';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import {
  describeRoot,
  generateRoot,
  readCertificate,
  sha1Fingerprint,
} from '../../../src/pki/index.js';
import { CLUSTER, DAY, T0, TD } from './helpers.js';

function thrown(fn: () => unknown): { status?: number; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { status?: number; message: string };
  }
  throw new Error('expected an error');
}

describe('CA: root generation', () => {
  const gen = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: 3650 * DAY, now: T0 });
  const x = new X509Certificate(gen.certPem);

  it('ID is the SHA-1 fingerprint of the DER, lower-case colon-hex (openssl -fingerprint)', () => {
    expect(gen.root.ID).to.equal(x.fingerprint.toLowerCase());
    expect(gen.root.ID).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/);
    expect(gen.root.ID).to.equal(sha1Fingerprint(gen.certPem));
    const sha1 = createHash('sha1').update(x.raw).digest('hex');
    expect(gen.root.ID.replace(/:/g, '')).to.equal(sha1);
  });

  it('SigningKeyID is the subject key id of the root (which signs leaves)', () => {
    const info = readCertificate(gen.certPem);
    expect(info.subjectKeyId).to.have.length(20);
    expect(gen.root.SigningKeyID).to.equal(
      [...info.subjectKeyId!].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    );
    // Self-signed: AKI = SKI.
    expect(info.authorityKeyId!.equals(info.subjectKeyId!)).to.equal(true);
  });

  it('is a self-signed EC P-256 CA with the trust domain URI SAN and Consul-shaped CN', () => {
    expect(x.ca).to.equal(true);
    expect(x.verify(x.publicKey)).to.equal(true);
    expect(x.checkIssued(x)).to.equal(true);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    expect(x.subjectAltName).to.equal(`URI:spiffe://${TD}`);
    expect(x.subject).to.match(/^CN=pri-[0-9a-f]{8}\.consul\.ca\.11111111\.consul$/);
    expect(x.issuer).to.equal(x.subject);
    const info = readCertificate(gen.certPem);
    expect(info.isCA).to.equal(true);
    expect(info.keyUsage).to.deep.equal(['keyCertSign', 'cRLSign']);
    expect(info.pathLen).to.equal(undefined);
  });

  it('fills the CARoot record', () => {
    const r = gen.root;
    expect(r.Name).to.equal('Trellis CA Primary Cert');
    expect(r.NotBefore).to.equal('2026-03-01T11:59:00Z');
    expect(r.NotAfter).to.equal(
      new Date(T0.getTime() + 3650 * DAY).toISOString().replace('.000Z', 'Z'),
    );
    expect(r.RootCert).to.equal(gen.certPem);
    expect(r.IntermediateCerts).to.equal(null);
    expect(r.PrivateKeyType).to.equal('ec');
    expect(r.PrivateKeyBits).to.equal(256);
    expect(r.TrustDomain).to.equal(TD);
    expect(Number.isSafeInteger(r.SerialNumber) && r.SerialNumber > 0).to.equal(true);
    expect(BigInt(`0x${x.serialNumber}`)).to.equal(BigInt(r.SerialNumber));
  });

  it('returns the key as PKCS#8 PEM matching the certificate', () => {
    expect(gen.keyPem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(x.checkPrivateKey(createPrivateKey(gen.keyPem))).to.equal(true);
  });

  it('uses a given serial and makes roots with distinct subjects', () => {
    const g2 = generateRoot({
      clusterId: CLUSTER,
      trustDomain: TD,
      ttlMs: DAY,
      now: T0,
      serial: Buffer.from([0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    });
    expect(g2.root.SerialNumber).to.equal(Number.MAX_SAFE_INTEGER);
    expect(new X509Certificate(g2.certPem).subject).to.not.equal(x.subject);
  });

  it('refuses bad inputs with a 400', () => {
    const base = { clusterId: CLUSTER, trustDomain: TD, ttlMs: DAY, now: T0 };
    for (const [opts, msg] of [
      [{ ...base, serial: Buffer.from('20000000000000', 'hex') }, 'serial'],
      [{ ...base, serial: Buffer.from([0]) }, 'serial'],
      [{ ...base, trustDomain: 'Bad Domain' }, 'trust domain'],
      [{ ...base, clusterId: 'x' }, 'cluster id'],
      [{ ...base, ttlMs: 0 }, 'TTL'],
    ] as const) {
      const e = thrown(() => generateRoot(opts));
      expect(e.status, msg).to.equal(400);
      expect(e.message).to.include(msg);
    }
  });

  it('describes an imported root and lists intermediates', () => {
    const d = describeRoot(gen.certPem, TD, { intermediates: ['X'] });
    expect(d.ID).to.equal(gen.root.ID);
    expect(d.IntermediateCerts).to.deep.equal(['X']);
    expect(thrown(() => describeRoot('nope', TD)).status).to.equal(400);
  });
});
