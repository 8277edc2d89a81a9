/**
 * Encryption of CA private keys at rest in a shared store (etcd): AES-256-GCM under a 32-byte
 * key every server holds in a file (--ca-encryption-key-file). Each value has a fresh random
 * 96-bit nonce and the root's id as associated data, so a value moved to another root's key
 * fails to decrypt. Stored as one line of JSON:
 *
 *   {"v":1,"alg":"A256GCM","kid":"<8 bytes of SHA-256 of the key, hex>","nonce":"..","data":".."}
 *
 * `kid` names which key sealed a value (so a wrong key file is told apart from a damaged value)
 * and reveals nothing of the key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const CA_ENCRYPTION_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

interface SealedValue {
  v: 1;
  alg: 'A256GCM';
  kid: string;
  nonce: string;
  /** Ciphertext followed by the 16-byte tag, base64. */
  data: string;
}

/**
 * The key from a key file's text: 32 bytes in base64 (surrounding whitespace allowed). Throws
 * an Error whose message says what is wrong, never the key.
 */
export function parseCaEncryptionKey(text: string): Buffer {
  const t = text.trim();
  if (t === '') throw new Error('the file is empty; it must hold 32 random bytes in base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0)
    throw new Error('it is not base64; make one with `openssl rand -base64 32`');
  const key = Buffer.from(t, 'base64');
  if (key.length !== CA_ENCRYPTION_KEY_BYTES)
    throw new Error(
      `it decodes to ${key.length} bytes, not ${CA_ENCRYPTION_KEY_BYTES}; make one with \`openssl rand -base64 32\``,
    );
  return key;
}

/** A short public name of a key: which key sealed a value. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, 8).toString('hex');
}

export function sealCaKey(key: Buffer, rootId: string, keyPem: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(rootId));
  const data = Buffer.concat([cipher.update(keyPem, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const value: SealedValue = {
    v: 1,
    alg: 'A256GCM',
    kid: keyId(key),
    nonce: nonce.toString('base64'),
    data: data.toString('base64'),
  };
  return Buffer.from(JSON.stringify(value));
}

/** The id of the key that sealed `sealed` (its `kid`), or undefined if it is not a record. */
export function sealedWith(sealed: Buffer): string | undefined {
  try {
    const v = JSON.parse(sealed.toString('utf8')) as Partial<SealedValue>;
    return typeof v.kid === 'string' ? v.kid : undefined;
  } catch {
    return undefined;
  }
}

/** Why a sealed value could not be opened: the key file's key is not the one that sealed it. */
export class WrongEncryptionKeyError extends Error {}

/**
 * The PEM sealed in `sealed` for `rootId`. Throws WrongEncryptionKeyError when another key
 * sealed it, and an Error saying what is wrong when it is damaged or belongs to another root.
 */
export function openCaKey(key: Buffer, rootId: string, sealed: Buffer): string {
  let v: Partial<SealedValue>;
  try {
    v = JSON.parse(sealed.toString('utf8')) as Partial<SealedValue>;
  } catch {
    throw new Error('the stored value is not an encrypted key record (not JSON)');
  }
  if (v.v !== 1 || v.alg !== 'A256GCM' || typeof v.nonce !== 'string' || typeof v.data !== 'string')
    throw new Error('the stored value is not an encrypted key record of a known version');
  const ours = keyId(key);
  if (v.kid !== ours)
    throw new WrongEncryptionKeyError(
      `it was encrypted with key ${String(v.kid)}, and the key file holds key ${ours}`,
    );
  const nonce = Buffer.from(v.nonce, 'base64');
  const data = Buffer.from(v.data, 'base64');
  if (nonce.length !== NONCE_BYTES || data.length <= TAG_BYTES)
    throw new Error('the stored value is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(rootId));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(data.subarray(0, data.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new Error(
      'authentication failed: the value was altered, or it is the key of another root',
    );
  }
}
