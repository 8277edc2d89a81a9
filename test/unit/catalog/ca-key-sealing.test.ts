/**
 * AES-256-GCM sealing of CA private keys (pure logic): a value opens only with the key that
 * sealed it and for the root it was sealed for; key files are checked for size and encoding.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  keyId,
  openCaKey,
  parseCaEncryptionKey,
  sealCaKey,
  WrongEncryptionKeyError,
} from '../../../src/catalog/connect/key-sealing.js';

const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

describe('catalog/connect/key-sealing', () => {
  const key = randomBytes(32);

  it('round-trips a key, with a fresh nonce each time and no PEM in the clear', () => {
    const a = sealCaKey(key, 'root-1', PEM);
    const b = sealCaKey(key, 'root-1', PEM);
    expect(openCaKey(key, 'root-1', a)).to.equal(PEM);
    expect(openCaKey(key, 'root-1', b)).to.equal(PEM);
    expect(a.equals(b)).to.equal(false);
    const na = JSON.parse(a.toString()) as { nonce: string; kid: string };
    const nb = JSON.parse(b.toString()) as { nonce: string };
    expect(na.nonce).to.not.equal(nb.nonce);
    expect(na.kid).to.equal(keyId(key));
    expect(a.toString()).to.not.include('PRIVATE KEY');
    expect(a.toString()).to.not.include('MIGHAgEA');
  });

  it('refuses another key, naming both key ids', () => {
    const sealed = sealCaKey(key, 'root-1', PEM);
    const other = randomBytes(32);
    expect(() => openCaKey(other, 'root-1', sealed))
      .to.throw(WrongEncryptionKeyError)
      .with.property(
        'message',
        `it was encrypted with key ${keyId(key)}, and the key file holds key ${keyId(other)}`,
      );
  });

  it('refuses a value moved to another root (the root id is associated data)', () => {
    const sealed = sealCaKey(key, 'root-1', PEM);
    expect(() => openCaKey(key, 'root-2', sealed)).to.throw(/authentication failed/);
  });

  it('refuses an altered or damaged value', () => {
    const v = JSON.parse(sealCaKey(key, 'r', PEM).toString()) as { data: string };
    const data = Buffer.from(v.data, 'base64');
    data[0] = data[0]! ^ 1;
    const altered = Buffer.from(JSON.stringify({ ...v, data: data.toString('base64') }));
    expect(() => openCaKey(key, 'r', altered)).to.throw(/authentication failed/);
    expect(() => openCaKey(key, 'r', Buffer.from('-----BEGIN'))).to.throw(/not JSON/);
    expect(() => openCaKey(key, 'r', Buffer.from('{"v":2}'))).to.throw(/known version/);
  });

  it('parses key files: 32 bytes of base64, whitespace around allowed', () => {
    const text = `${key.toString('base64')}\n`;
    expect(parseCaEncryptionKey(text).equals(key)).to.equal(true);
    expect(() => parseCaEncryptionKey('')).to.throw(/empty/);
    expect(() => parseCaEncryptionKey('not base64!')).to.throw(/not base64/);
    expect(() => parseCaEncryptionKey(randomBytes(16).toString('base64'))).to.throw(
      /decodes to 16 bytes, not 32/,
    );
    expect(() => parseCaEncryptionKey(key.toString('hex'))).to.throw(/decodes to 48 bytes/);
  });
});
