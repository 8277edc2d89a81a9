/** Leaf signing from agents' CSRs: what is granted, what is refused, and that it chains. */
import { expect } from 'chai';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  createCsr,
  generateRoot,
  loadPrivateKey,
  readCertificate,
  signLeaf,
  verifyChain,
  type SignLeafOptions,
} from '../../../src/pki/index.js';
import { CLUSTER, DAY, ecKey, HOUR, rawCsr, spiffe, T0, TD } from './helpers.js';

function thrown(fn: () => unknown): { status?: number; message: string; kind?: string } {
  try {
    fn();
  } catch (e) {
    return e as { status?: number; message: string };
  }
  throw new Error('expected an error');
}

describe('CA: signing leaves from CSRs', () => {
  const root = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: 3650 * DAY, now: T0 });
  const rootKey = loadPrivateKey(root.keyPem);
  const web = spiffe('web');
  const agentKey = ecKey();
  const base = (csrPem: string, extra: Partial<SignLeafOptions> = {}): SignLeafOptions => ({
    csrPem,
    expectedUri: web,
    signerKey: rootKey,
    signerCertPem: root.certPem,
    ttlMs: 72 * HOUR,
    now: T0,
    ...extra,
  });

  it('issues a leaf naming only the expected URI, backdated 60 s, client+server auth', () => {
    const out = signLeaf(base(createCsr(agentKey, web)));
    const x = new X509Certificate(out.certPem);
    expect(x.subjectAltName).to.equal(`URI:${web}`);
    expect(x.subject ?? '').to.equal(''); // Node reports an empty subject as undefined
    expect(x.ca).to.equal(false);
    expect(x.keyUsage).to.have.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(x.checkPrivateKey(agentKey)).to.equal(true);
    const info = readCertificate(out.certPem);
    expect(info.notBefore.toISOString()).to.equal('2026-03-01T11:59:00.000Z');
    expect(info.notAfter.getTime() - info.notBefore.getTime()).to.equal(72 * HOUR);
    expect(out.validAfter).to.equal('2026-03-01T11:59:00Z');
    expect(out.validBefore).to.equal('2026-03-04T11:59:00Z');
    expect(info.keyUsage).to.deep.equal([
      'digitalSignature',
      'keyEncipherment',
      'dataEncipherment',
      'keyAgreement',
    ]);
    // Key ids chain: AKI = root SKI, SKI = leaf key id.
    const r = readCertificate(root.certPem);
    expect(info.authorityKeyId!.equals(r.subjectKeyId!)).to.equal(true);
    expect(info.subjectKeyId).to.have.length(20);
    expect(info.subjectKeyId!.equals(r.subjectKeyId!)).to.equal(false);
    // Serial: 128-bit random, reported in colon-hex.
    expect(out.serialNumber.replace(/:/g, '')).to.equal(x.serialNumber.toLowerCase());
    expect(out.serialNumber).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2})*$/);
  });

  it('chains to the root (Node checks and our verifyChain)', () => {
    const out = signLeaf(base(createCsr(agentKey, web)));
    const x = new X509Certificate(out.certPem);
    const r = new X509Certificate(root.certPem);
    expect(x.checkIssued(r)).to.equal(true);
    expect(x.verify(r.publicKey)).to.equal(true);
    expect(verifyChain(out.certPem, [], [root.certPem], T0)).to.equal(true);
    // Not yet valid before its NotBefore; expired after NotAfter.
    expect(verifyChain(out.certPem, [], [root.certPem], new Date(T0.getTime() - HOUR))).to.match(
      /not valid until/,
    );
    expect(verifyChain(out.certPem, [], [root.certPem], new Date(T0.getTime() + 4 * DAY))).to.match(
      /expired/,
    );
  });

  it('uses the given serial', () => {
    const out = signLeaf(base(createCsr(agentKey, web), { serial: Buffer.from('00ff01', 'hex') }));
    expect(out.serialNumber).to.equal('ff:01');
    expect(new X509Certificate(out.certPem).serialNumber).to.equal('FF01');
  });

  it('never outlives the signer', () => {
    const short = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: HOUR, now: T0 });
    const out = signLeaf(
      base(createCsr(agentKey, web), {
        signerKey: loadPrivateKey(short.keyPem),
        signerCertPem: short.certPem,
      }),
    );
    expect(out.validBefore).to.equal(short.root.NotAfter);
    const expired = thrown(() =>
      signLeaf(
        base(createCsr(agentKey, web), {
          signerKey: loadPrivateKey(short.keyPem),
          signerCertPem: short.certPem,
          now: new Date(T0.getTime() + 2 * HOUR),
        }),
      ),
    );
    expect(expired.message).to.include('expired');
    expect(expired.status).to.equal(500);
  });

  it('grants DNS and IP SANs only when the caller allows them', () => {
    const csr = createCsr(agentKey, web, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const refused = thrown(() => signLeaf(base(csr)));
    expect(refused.status).to.equal(400);
    expect(refused.message).to.include('DNS SAN "localhost" is not allowed');
    const noIp = thrown(() => signLeaf(base(csr, { dnsNames: ['localhost'] })));
    expect(noIp.message).to.include('IP SAN "127.0.0.1" is not allowed');
    const out = signLeaf(
      base(csr, {
        dnsNames: ['LOCALHOST', 'other.example'],
        ipAddresses: ['127.0.0.1', '0:0:0:0:0:0:0:1', '10.0.0.1'],
      }),
    );
    const x = new X509Certificate(out.certPem);
    // Only what was both requested and allowed; the URI is still the only identity URI.
    expect(x.subjectAltName).to.equal(
      `URI:${web}, DNS:LOCALHOST, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`,
    );
  });

  it('refuses a CSR that asks for CA:true', () => {
    const e = thrown(() => signLeaf(base(rawCsr(agentKey, { uris: [web], ca: true }))));
    expect(e.status).to.equal(400);
    expect(e.message).to.include('CA:true');
    // CA:false spelled out is fine.
    expect(signLeaf(base(rawCsr(agentKey, { uris: [web], ca: false }))).certPem).to.be.a('string');
  });

  it('refuses a CSR naming another URI or an extra URI', () => {
    for (const uris of [[spiffe('db')], [web, spiffe('db')], [spiffe('db'), web]]) {
      const e = thrown(() => signLeaf(base(rawCsr(agentKey, { uris }))));
      expect(e.status).to.equal(400);
      expect(e.message).to.include(`URI SAN "${spiffe('db')}"`);
    }
    const other = thrown(() => signLeaf(base(rawCsr(agentKey, { uris: [web], emails: ['a@b'] }))));
    expect(other.message).to.include('rfc822Name');
  });

  it('takes the identity from the caller, not the CSR', () => {
    // A CSR without any SAN still yields a certificate for the expected URI only.
    const out = signLeaf(base(rawCsr(agentKey, {})));
    expect(new X509Certificate(out.certPem).subjectAltName).to.equal(`URI:${web}`);
    // Requested extensions we never copy (e.g. a custom OID) are ignored, not copied.
    const custom = signLeaf(base(rawCsr(agentKey, { uris: [web], extraExtensions: ['1.2.3.4'] })));
    expect(readCertificate(custom.certPem).x509.toString()).to.not.include('1.2.3.4');
  });

  it('refuses garbage, truncated and RSA CSRs with a 400 and a clear message', () => {
    const good = createCsr(agentKey, web);
    const der = Buffer.from(good.split('\n').slice(1, -2).join(''), 'base64');
    const pem = (b: Buffer): string =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    for (const [csr, msg] of [
      ['', 'not a PEM'],
      ['hello', 'not a PEM'],
      [pem(der.subarray(0, der.length - 10)), 'truncated'],
      [pem(der.subarray(0, 40)), 'truncated'],
      [pem(Buffer.from('3003020100', 'hex')), 'not a PKCS#10'],
      [pem(Buffer.concat([der, Buffer.from([0])])), 'trailing bytes'],
      [pem(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), 'length too large'],
      [pem(Buffer.from([0x30, 0x80, 0, 0])), 'indefinite length'],
      [createCsr(rsa, web), 'must be EC P-256, not rsa'],
      [createCsr(ecKey('secp384r1'), web), 'must be EC P-256, not ec secp384r1'],
      ['-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----', 'base64'],
      [good + good, 'more than one request'],
      [`${'x'.repeat(20000)}${good}`, 'larger than'],
    ] as const) {
      const e = thrown(() => signLeaf(base(csr)));
      expect(e.status, msg).to.equal(400);
      expect(e.message, msg).to.include(msg);
      expect(e.message, msg).to.match(/^CSR: /);
    }
  });

  it('refuses a signer key that does not match the signer certificate', () => {
    const e = thrown(() => signLeaf(base(createCsr(agentKey, web), { signerKey: ecKey() })));
    expect(e.message).to.include('does not match');
  });

  it('refuses an expected URI that is not a SPIFFE id', () => {
    const e = thrown(() => signLeaf(base(createCsr(agentKey, web), { expectedUri: 'http://x' })));
    expect(e.status).to.equal(400);
  });
});
