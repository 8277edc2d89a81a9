/**
 * CA private keys in etcd, for servers sharing the catalog there: one value per root at
 * <prefix>/ca-keys/<root id>, AES-256-GCM encrypted (connect/key-sealing.ts) under the key of
 * --ca-encryption-key-file. etcd, its backups and anyone reading them see only ciphertext; a
 * server holding the key file decrypts a root's key when it needs to sign with it.
 *
 * Upgrade from servers that kept keys as files: a root whose key is in the old directory
 * (<data-dir>/catalog/ca-keys) and not in etcd is uploaded, encrypted, the first time it is read
 * (create-if-absent, so it happens once even if several servers hold the file).
 */
import type { Etcd3 } from 'etcd3';
import { MeshError, storageError } from '../../core/index.js';
import type { CaKeyStore } from '../connect/key-store.js';
import {
  WrongEncryptionKeyError,
  keyId,
  openCaKey,
  sealCaKey,
  sealedWith,
} from '../connect/key-sealing.js';
import { etcdCause } from './etcd-errors.js';
import { prefixEnd, type EtcdKeys } from './keys.js';
import type { CallDeadline } from './etcd-snapshots.js';

export interface EtcdCaKeyStoreOptions {
  client: Etcd3;
  keys: EtcdKeys;
  /** The 32-byte key and the file it came from (named in messages). */
  encryptionKey: Buffer;
  encryptionKeyFile: string;
  /**
   * Keys stored values may still be sealed with while the operator changes the key
   * (--ca-encryption-previous-key-file): opened with them, and re-sealed with encryptionKey.
   */
  previousKeys?: readonly { key: Buffer; file: string }[];
  /** Keys written as files by earlier versions, uploaded when missing from etcd. */
  legacy?: CaKeyStore;
  call: CallDeadline;
  log: { warn(o: object, m: string): void };
}

/** A value in etcd that the key file cannot decrypt: the start stops with this message. */
export function undecryptable(file: string, etcdKey: string, reason: string): MeshError {
  return new MeshError(
    'MESH_ERR_CA_KEY',
    'user',
    `the CA key ${etcdKey} in etcd cannot be decrypted with the key in ${file}: ${reason}; every server needs the same --ca-encryption-key-file (docs/ha.md)`,
    { status: 500 },
  );
}

export class EtcdCaKeyStore implements CaKeyStore {
  readonly #o: EtcdCaKeyStoreOptions;

  constructor(opts: EtcdCaKeyStoreOptions) {
    this.#o = opts;
  }

  #keyOf(rootId: string): string {
    return `${this.#o.keys.caKeysPrefix}${rootId}`;
  }

  where(rootId: string): string {
    return `etcd key ${this.#keyOf(rootId)} (encrypted with ${this.#o.encryptionKeyFile})`;
  }

  async write(rootId: string, keyPem: string): Promise<void> {
    const value = sealCaKey(this.#o.encryptionKey, rootId, keyPem);
    try {
      await this.#o.client.kv.put({ key: Buffer.from(this.#keyOf(rootId)), value }, this.#o.call());
    } catch (err) {
      throw storageError(`could not store the CA key in etcd: ${etcdCause(err)}`, err);
    }
  }

  async read(rootId: string): Promise<string | undefined> {
    const key = this.#keyOf(rootId);
    let found: Buffer | undefined;
    try {
      const r = await this.#o.client.kv.range({ key: Buffer.from(key) }, this.#o.call());
      found = r.kvs[0]?.value;
    } catch (err) {
      throw storageError(`could not read the CA key from etcd: ${etcdCause(err)}`, err);
    }
    if (found) return this.#open(rootId, key, found);
    const old = await this.#o.legacy?.read(rootId);
    if (old === undefined) return undefined;
    await this.#upload(rootId, old);
    return old;
  }

  /**
   * Decrypts every key stored in etcd: a key file that is not the cluster's is found at start,
   * not at the first signing. A value sealed with a previous key is sealed again with the
   * current one (compare-and-swap on its revision: servers starting together do it once).
   */
  async verifyAll(): Promise<{ stored: number; resealed: number }> {
    const prefix = this.#o.keys.caKeysPrefix;
    let kvs;
    try {
      const r = await this.#o.client.kv.range(
        { key: Buffer.from(prefix), range_end: prefixEnd(prefix) },
        this.#o.call(),
      );
      kvs = r.kvs;
    } catch (err) {
      throw storageError(`could not read the CA keys from etcd: ${etcdCause(err)}`, err);
    }
    const current = keyId(this.#o.encryptionKey);
    let resealed = 0;
    for (const kv of kvs) {
      const key = kv.key.toString();
      const rootId = key.slice(prefix.length);
      const pem = this.#open(rootId, key, kv.value);
      if (sealedWith(kv.value) === current) continue;
      if (await this.#reseal(rootId, key, pem, kv.mod_revision)) resealed++;
    }
    if (resealed > 0)
      this.#o.log.warn(
        { resealed, keyId: current, file: this.#o.encryptionKeyFile },
        'CA keys encrypted with a previous key were encrypted again with the current key',
      );
    return { stored: kvs.length, resealed };
  }

  /** Seals `pem` again with the current key, unless the value changed since `revision`. */
  async #reseal(rootId: string, etcdKey: string, pem: string, revision: string): Promise<boolean> {
    const k = Buffer.from(etcdKey);
    const value = sealCaKey(this.#o.encryptionKey, rootId, pem);
    try {
      const r = await this.#o.client.kv.txn(
        {
          compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: revision }],
          success: [{ request_put: { key: k, value } }],
        },
        this.#o.call(),
      );
      return r.succeeded;
    } catch (err) {
      throw storageError(`could not re-encrypt the CA key in etcd: ${etcdCause(err)}`, err);
    }
  }

  /** The key that sealed a value: the current one, or a previous one with the same id. */
  #keyFor(sealed: Buffer): Buffer {
    const kid = sealedWith(sealed);
    if (kid === undefined || kid === keyId(this.#o.encryptionKey)) return this.#o.encryptionKey;
    return this.#o.previousKeys?.find((p) => keyId(p.key) === kid)?.key ?? this.#o.encryptionKey;
  }

  #open(rootId: string, etcdKey: string, sealed: Buffer): string {
    try {
      return openCaKey(this.#keyFor(sealed), rootId, sealed);
    } catch (err) {
      let why = err instanceof Error ? err.message : String(err);
      const previous = this.#o.previousKeys ?? [];
      if (err instanceof WrongEncryptionKeyError && previous.length > 0)
        why += `, and the previous key files hold ${previous.map((p) => `key ${keyId(p.key)} (${p.file})`).join(', ')}`;
      throw undecryptable(this.#o.encryptionKeyFile, etcdKey, why);
    }
  }

  async #upload(rootId: string, keyPem: string): Promise<void> {
    const k = Buffer.from(this.#keyOf(rootId));
    const value = sealCaKey(this.#o.encryptionKey, rootId, keyPem);
    let created: boolean;
    try {
      const r = await this.#o.client.kv.txn(
        {
          compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key: k, value } }],
        },
        this.#o.call(),
      );
      created = r.succeeded;
    } catch (err) {
      throw storageError(`could not upload the CA key to etcd: ${etcdCause(err)}`, err);
    }
    // A warning: the operator should now delete the unencrypted file.
    if (created)
      this.#o.log.warn(
        {
          root: rootId,
          from: this.#o.legacy?.where(rootId),
          to: this.#keyOf(rootId),
          keyId: keyId(this.#o.encryptionKey),
        },
        'CA key found only in the old ca-keys directory: uploaded to etcd, encrypted; delete the file',
      );
  }
}
