/**
 * A StoreFs over the real file system whose writes, syncs, truncations and opens can be made to
 * fail on demand, and which counts the calls the store makes.
 */
import { nodeFs, type StoreFileHandle, type StoreFs } from '../../../src/catalog/store/store-fs.js';

export type WriteFault = { code: string; partial: boolean };

export class FaultyFs implements StoreFs {
  /** Fails the next write to a wal file; with `partial`, half the bytes land first. */
  nextWalWrite: WriteFault | null = null;
  /** Fails the next fdatasync with this code. */
  nextDatasync: string | null = null;
  /** Fails every truncate with this code while set. */
  truncate: string | null = null;
  /** Fails opens of paths matching this pattern while set. */
  openPattern: RegExp | null = null;
  /** Fails writes to snapshot files while set. */
  snapshotWrite: string | null = null;
  /** Fails unlinks of paths matching this pattern while set. */
  unlinkPattern: RegExp | null = null;
  walWrites = 0;
  datasyncs = 0;

  mkdir = nodeFs.mkdir;
  readdir = nodeFs.readdir;
  readFile = nodeFs.readFile;
  rename = nodeFs.rename;

  async unlink(path: string): Promise<void> {
    if (this.unlinkPattern?.test(path)) throw errno('EBUSY', 'unlink', path);
    return nodeFs.unlink(path);
  }

  async open(path: string, flags: string): Promise<StoreFileHandle> {
    if (this.openPattern?.test(path)) throw errno('EACCES', 'open', path);
    const inner = await nodeFs.open(path, flags);
    const isWal = /wal-\d+\.log$/.test(path);
    const isSnapshot = /snapshot-\d+\.tmp$/.test(path);
    return {
      write: async (buffer, offset, length, position) => {
        if (isSnapshot && this.snapshotWrite) throw errno(this.snapshotWrite, 'write', path);
        if (!isWal) return inner.write(buffer, offset, length, position);
        this.walWrites++;
        const fault = this.nextWalWrite;
        if (!fault) return inner.write(buffer, offset, length, position);
        this.nextWalWrite = null;
        if (fault.partial) await inner.write(buffer, offset, Math.floor(length / 2), position);
        throw errno(fault.code, 'write', path);
      },
      datasync: async () => {
        this.datasyncs++;
        const code = this.nextDatasync;
        if (code) {
          this.nextDatasync = null;
          throw errno(code, 'fdatasync', path);
        }
        return inner.datasync();
      },
      sync: () => inner.sync(),
      truncate: async (len) => {
        if (this.truncate) throw errno(this.truncate, 'ftruncate', path);
        return inner.truncate(len);
      },
      close: () => inner.close(),
    };
  }
}

function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: simulated failure, ${syscall} '${path}'`);
  err.code = code;
  err.syscall = syscall;
  return err;
}
