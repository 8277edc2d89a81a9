/** The CA's small helpers: IP SANs, hex and fingerprints, PEM chains, serials, chain checks. */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import {
  caFingerprint,
  canonicalIp,
  colonHex,
  crossSign,
  fingerprintMatches,
  formatIp,
  generateRoot,
  issueCertificate,
  loadPrivateKey,
  parseCert,
  parseIp,
  publicOf,
  randomRootSerial,
  randomSerial,
  readCertificate,
  serialHex,
  serialToNumber,
  splitPemChain,
  verifyChain,
} from '../../../src/pki/index.js';
import { isMeshError } from '../../../src/core/index.js';
import { CLUSTER, DAY, ecKey, HOUR, spiffe, T0, TD } from './helpers.js';

function thrown(fn: () => unknown): { status?: number; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { status?: number; message: string };
  }
  throw new Error('expected an error');
}

const root = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: 3650 * DAY, now: T0 });
const rootKey = loadPrivateKey(root.keyPem);

describe('CA helpers: IP addresses', () => {
  it('parses v4 and v6 strictly and formats canonically', () => {
    for (const [text, canon] of [
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
      ['::', '::'],
      ['fe80::', 'fe80::'],
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['::ffff:10.1.2.3', '::ffff:a01:203'],
      ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ]) {
      expect(canonicalIp(text!), text).to.equal(canon);
    }
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '256.1.1.1',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '12345::',
      ':1.2.3.4',
      '::1%eth0',
      'localhost',
    ]) {
      expect(parseIp(bad), bad).to.equal(undefined);
    }
    expect(formatIp(Buffer.alloc(5))).to.equal(undefined);
  });

  it('puts v4 and v6 IP SANs in certificates that Node reads back', () => {
    const key = ecKey();
    const pem = issueCertificate({
      serial: randomSerial(),
      subjectCN: '',
      issuerName: readCertificate(root.certPem).subjectName,
      notBefore: T0,
      notAfter: new Date(T0.getTime() + HOUR),
      publicKey: publicOf(key),
      signerKey: rootKey,
      signerPublicKey: publicOf(rootKey),
      isCA: false,
      uris: [spiffe('web')],
      ipAddresses: ['127.0.0.1', '2001:db8::1'],
    });
    const x = new X509Certificate(pem);
    expect(x.subjectAltName).to.equal(
      `URI:${spiffe('web')}, IP Address:127.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1`,
    );
    expect(x.checkIP('2001:db8::1')).to.equal('2001:db8::1');
    expect(readCertificate(pem).ipAddresses).to.deep.equal(['127.0.0.1', '2001:db8::1']);
    const bad = thrown(() =>
      issueCertificate({
        serial: randomSerial(),
        notBefore: T0,
        notAfter: T0,
        publicKey: publicOf(key),
        signerKey: rootKey,
        signerPublicKey: publicOf(rootKey),
        isCA: false,
        ipAddresses: ['1.2.3'],
      }),
    );
    expect(bad.message).to.include('"1.2.3" is not an IP address');
  });

  it('encodes a pathLen constraint on CA certificates only', () => {
    const key = ecKey();
    const spec = {
      serial: randomSerial(),
      subjectCN: 'int',
      issuerName: readCertificate(root.certPem).subjectName,
      notBefore: T0,
      notAfter: new Date(T0.getTime() + DAY),
      publicKey: publicOf(key),
      signerKey: rootKey,
      signerPublicKey: publicOf(rootKey),
      isCA: true,
      pathLen: 0,
    };
    expect(readCertificate(issueCertificate(spec)).pathLen).to.equal(0);
    expect(readCertificate(issueCertificate({ ...spec, pathLen: 300 })).pathLen).to.equal(300);
    expect(thrown(() => issueCertificate({ ...spec, isCA: false })).message).to.include('pathLen');
  });
});

describe('CA helpers: hex, fingerprints, PEM', () => {
  it('formats colon-hex and serials', () => {
    expect(colonHex(Buffer.from([0, 0xab, 0x1]))).to.equal('00:ab:01');
    expect(serialHex(Buffer.from([0, 0x80, 0x1]))).to.equal('80:01');
    expect(serialHex(Buffer.from([0]))).to.equal('00');
  });

  it('caFingerprint is the SHA-256 of the DER; both spellings match', () => {
    const x = new X509Certificate(root.certPem);
    const fp = caFingerprint(root.certPem);
    expect(fp).to.match(/^[0-9a-f]{64}$/);
    expect(fp).to.equal(x.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(fingerprintMatches(root.certPem, fp)).to.equal(true);
    expect(fingerprintMatches(root.certPem, x.fingerprint256)).to.equal(true); // upper colon-hex
    expect(fingerprintMatches(root.certPem, `sha256:${fp.toUpperCase()}`)).to.equal(true);
    expect(fingerprintMatches(root.certPem, ` ${fp}\n`)).to.equal(true);
    const other = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: DAY, now: T0 });
    expect(fingerprintMatches(other.certPem, fp)).to.equal(false);
    for (const bad of ['', fp.slice(2), `${fp}00`, 'zz'.repeat(32), x.fingerprint])
      expect(fingerprintMatches(root.certPem, bad), bad).to.equal(false);
  });

  it('splits PEM chains and parses certificates', () => {
    const other = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: DAY, now: T0 });
    const text = `junk\n${root.certPem}\n\n${root.keyPem}${other.certPem.replace(/\n/g, '\r\n')}`;
    const parts = splitPemChain(text);
    expect(parts).to.deep.equal([root.certPem, other.certPem]);
    expect(splitPemChain('nothing here')).to.deep.equal([]);
    expect(parseCert(text).fingerprint).to.equal(new X509Certificate(root.certPem).fingerprint);
    expect(thrown(() => parseCert('nope')).status).to.equal(400);
    const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(thrown(() => parseCert(garbage)).message).to.include('not a readable');
    expect(thrown(() => readCertificate(garbage)).status).to.equal(400);
  });

  it('reads every single-byte corruption of a certificate as a 400 or a certificate', () => {
    const der = readCertificate(root.certPem).der;
    for (let i = 0; i < der.length; i++)
      for (const v of [0x00, 0xff, 0x80, der[i]! ^ 0x01]) {
        const b = Buffer.from(der);
        b[i] = v;
        try {
          readCertificate(b);
        } catch (e) {
          if (!isMeshError(e) || e.status !== 400) throw e;
        }
      }
  });

  it('makes 128-bit leaf serials and 53-bit root serials', () => {
    const s = randomSerial();
    expect(s).to.have.length(16);
    expect(randomSerial().equals(s)).to.equal(false);
    for (let i = 0; i < 50; i++) {
      const n = serialToNumber(randomRootSerial());
      expect(n !== undefined && n > 0 && Number.isSafeInteger(n)).to.equal(true);
    }
    expect(serialToNumber(Buffer.from('20000000000000', 'hex'))).to.equal(undefined);
  });
});

describe('CA helpers: cross-signing and verifyChain', () => {
  it('cuts a cross-signed certificate at the old root expiry and checks the key', () => {
    const old = generateRoot({ clusterId: CLUSTER, trustDomain: TD, ttlMs: 2 * DAY, now: T0 });
    const x = crossSign({
      newRootPem: root.certPem,
      oldRootPem: old.certPem,
      oldRootKey: loadPrivateKey(old.keyPem),
      now: T0,
      ttlMs: 7 * DAY,
    });
    expect(readCertificate(x).notAfter.getTime()).to.equal(
      readCertificate(old.certPem).notAfter.getTime(),
    );
    expect(readCertificate(x).notBefore.toISOString()).to.equal('2026-03-01T11:59:00.000Z');
    const wrongKey = thrown(() =>
      crossSign({
        newRootPem: root.certPem,
        oldRootPem: old.certPem,
        oldRootKey: rootKey,
        now: T0,
        ttlMs: DAY,
      }),
    );
    expect(wrongKey.message).to.include('does not match');
  });

  it('explains why a chain does not verify', () => {
    let made = 0;
    const mk = (opts: { isCA: boolean; pathLen?: number; notAfter?: Date }, signer = rootKey) => {
      const key = ecKey();
      const issuer = signer === rootKey ? readCertificate(root.certPem) : undefined;
      return {
        key,
        pem: issueCertificate({
          serial: randomSerial(),
          subjectCN: opts.isCA ? `int-${++made}` : '',
          issuerName: issuer?.subjectName,
          notBefore: T0,
          notAfter: opts.notAfter ?? new Date(T0.getTime() + DAY),
          publicKey: publicOf(key),
          signerKey: signer,
          signerPublicKey: publicOf(signer),
          isCA: opts.isCA,
          pathLen: opts.pathLen,
          uris: opts.isCA ? [] : [spiffe('web')],
        }),
      };
    };
    const at = new Date(T0.getTime() + HOUR);
    // Intermediates named by subjectCN; leaves under them need the intermediate's name.
    const under = (int: { key: ReturnType<typeof ecKey>; pem: string }, isCA = false) => {
      const key = ecKey();
      return {
        key,
        pem: issueCertificate({
          serial: randomSerial(),
          subjectCN: isCA ? 'sub' : '',
          issuerName: readCertificate(int.pem).subjectName,
          notBefore: T0,
          notAfter: new Date(T0.getTime() + DAY),
          publicKey: publicOf(key),
          signerKey: int.key,
          signerPublicKey: publicOf(int.key),
          isCA,
          uris: [spiffe('web')],
        }),
      };
    };
    const int0 = mk({ isCA: true, pathLen: 0 });
    const leaf = under(int0);
    expect(verifyChain(leaf.pem, [int0.pem], [root.certPem], at)).to.equal(true);
    expect(verifyChain(leaf.pem, [], [root.certPem], at)).to.match(/no trusted root/);
    expect(verifyChain(leaf.pem, [int0.pem], [], at)).to.equal('no trusted roots');
    // pathLen 0 forbids another CA below it.
    const sub = under(int0, true);
    const deep = under(sub);
    expect(verifyChain(deep.pem, [sub.pem, int0.pem], [root.certPem], at)).to.match(
      /allows only 0 intermediates/,
    );
    // An intermediate that is not a CA cannot issue.
    const notCa = mk({ isCA: false });
    expect(verifyChain(under(notCa).pem, [notCa.pem], [root.certPem], at)).to.be.a('string');
    // An expired intermediate.
    const shortInt = mk({ isCA: true, notAfter: new Date(T0.getTime() + 30 * 60_000) });
    expect(verifyChain(under(shortInt).pem, [shortInt.pem], [root.certPem], at)).to.match(
      /intermediate .* expired/,
    );
    expect(verifyChain('garbage', [], [root.certPem], at)).to.match(/^leaf: /);
  });
});
