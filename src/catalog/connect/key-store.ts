/**
 * Where a server keeps the CA's private keys, one per root, by the root's id. A key is stored
 * (and confirmed durable) before its root is proposed to the state, so a root is never active
 * without its key:
 *
 *   FileCaKeyStore  the embedded store: PKCS#8 PEM files in <data-dir>/catalog/ca-keys
 *   EtcdCaKeyStore  --store etcd: encrypted values in etcd (catalog/etcd/etcd-key-store.ts)
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../../core/make-dirs.js';

export interface CaKeyStore {
  /** Stores a root's key; resolves once it is durable (fsynced, or committed by etcd). */
  write(rootId: string, keyPem: string): Promise<void>;
  /** The key's PEM, or undefined when the store holds none for that root. */
  read(rootId: string): Promise<string | undefined>;
  /** Where a root's key is kept, for messages. */
  where(rootId: string): string;
}

/**
 * Keys as files in a directory only the server's user can enter (0700), each file 0600.
 */
export class FileCaKeyStore implements CaKeyStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(rootId: string): string {
    return join(this.dir, `${rootId.replace(/:/g, '')}.key`);
  }

  where(rootId: string): string {
    return this.pathOf(rootId);
  }

  write(rootId: string, keyPem: string): Promise<void> {
    try {
      this.writeSync(rootId, keyPem);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  writeSync(rootId: string, keyPem: string): void {
    makeDirs(this.dir, 0o700);
    const path = this.pathOf(rootId);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, keyPem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  read(rootId: string): Promise<string | undefined> {
    try {
      return Promise.resolve(this.readSync(rootId));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  readSync(rootId: string): string | undefined {
    try {
      return readFileSync(this.pathOf(rootId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}
