/**
 * CA private keys on a server's disk: one PKCS#8 PEM per root, named by the root's id, in a
 * directory only the server's user can enter (0700), each file 0600. A key is written (and
 * fsynced) before its root is proposed to the state, so a root is never active without its key.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export class CaKeyStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(rootId: string): string {
    return join(this.dir, `${rootId.replace(/:/g, '')}.key`);
  }

  write(rootId: string, keyPem: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
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

  /** The key's PEM, or undefined when this server has no key for that root. */
  read(rootId: string): string | undefined {
    try {
      return readFileSync(this.pathOf(rootId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}
