/**
 * The slice of the file system the store uses. It is an interface so tests can inject failing
 * writes, syncs and truncations; the default forwards to node:fs/promises.
 */
import { promises as fsp } from 'node:fs';
import { makeDirs } from '../../core/make-dirs.js';

export interface StoreFileHandle {
  write(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

export interface StoreFs {
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  /** flags as for fs.open: 'wx' (create, must not exist), 'r+', 'r'. */
  open(path: string, flags: string): Promise<StoreFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export const nodeFs: StoreFs = {
  mkdir: async (path) => {
    // Not fsp.mkdir({ recursive }): it never settles for a path under /proc (core/make-dirs.ts).
    makeDirs(path, 0o777);
  },
  readdir: (path) => fsp.readdir(path),
  readFile: (path) => fsp.readFile(path),
  open: (path, flags) => fsp.open(path, flags),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
};

/** Writes all of `buf` at `position`, looping over short writes. */
export async function writeFully(
  handle: StoreFileHandle,
  buf: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write (${done} of ${buf.length} bytes)`);
    done += bytesWritten;
  }
}

/** fsyncs a directory so that file creations, renames and deletions in it are durable. */
export async function syncDir(fs: StoreFs, dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Cuts a file to `length` bytes and makes the cut durable. */
export async function truncateFile(fs: StoreFs, path: string, length: number): Promise<void> {
  const handle = await fs.open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
