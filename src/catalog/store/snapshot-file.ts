/**
 * Snapshot files: header + the server's opaque bytes, written atomically (tmp, fsync, rename,
 * fsync the directory) so a crash leaves either the old set of snapshots or the new one.
 *
 *   header = "TRSNAP01" (8) | index u64 BE (8) | data length u64 BE (8) | crc32 (4)
 * The crc covers the first 24 header bytes and the data, so a damaged index is caught too.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describeError, storageError } from '../../core/errors.js';
import { snapshotName, snapshotTmpName } from './file-names.js';
import { syncDir, writeFully, type StoreFs } from './store-fs.js';
import type { SnapshotData } from './types.js';

const MAGIC = Buffer.from('TRSNAP01', 'latin1');
const HEADER_BYTES = 28;

export function encodeSnapshotHeader(snap: SnapshotData): Buffer {
  const header = headerWithoutCrc(snap);
  header.writeUInt32BE(crc32(snap.data, crc32(header.subarray(0, 24))), 24);
  return header;
}

function headerWithoutCrc(snap: SnapshotData): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeBigUInt64BE(BigInt(snap.index), 8);
  header.writeBigUInt64BE(BigInt(snap.data.length), 16);
  return header;
}

const CRC_SLICE_BYTES = 4 * 1024 * 1024;

/**
 * The same header as encodeSnapshotHeader, with the checksum computed a slice at a time and the
 * event loop let go in between: a catalog of 100k instances makes a ~50 MB snapshot, whose
 * checksum in one go would stall every request for tens of milliseconds.
 */
async function encodeSnapshotHeaderInSlices(snap: SnapshotData): Promise<Buffer> {
  const header = headerWithoutCrc(snap);
  let crc = crc32(header.subarray(0, 24));
  for (let at = 0; at < snap.data.length; at += CRC_SLICE_BYTES) {
    crc = crc32(snap.data.subarray(at, at + CRC_SLICE_BYTES), crc);
    if (at + CRC_SLICE_BYTES < snap.data.length) await new Promise<void>((r) => setImmediate(r));
  }
  header.writeUInt32BE(crc, 24);
  return header;
}

/** Parses a snapshot file; returns a reason when it is unusable. */
export function decodeSnapshot(buf: Buffer, expectedIndex: number): SnapshotData | string {
  if (buf.length < HEADER_BYTES) return `file is ${buf.length} bytes, shorter than a header`;
  if (!buf.subarray(0, 8).equals(MAGIC)) return 'bad magic';
  const length = buf.readBigUInt64BE(16);
  if (length !== BigInt(buf.length - HEADER_BYTES)) {
    return `header says ${length} data bytes, file holds ${buf.length - HEADER_BYTES}`;
  }
  const data = buf.subarray(HEADER_BYTES);
  if (crc32(data, crc32(buf.subarray(0, 24))) !== buf.readUInt32BE(24)) return 'checksum mismatch';
  const index = buf.readBigUInt64BE(8);
  if (index !== BigInt(expectedIndex)) return `header index ${index} does not match the file name`;
  return { index: expectedIndex, data };
}

/** Durably writes a snapshot; on return it survives a crash. */
export async function writeSnapshotFile(
  fs: StoreFs,
  dir: string,
  snap: SnapshotData,
): Promise<void> {
  const tmp = join(dir, snapshotTmpName(snap.index));
  const final = join(dir, snapshotName(snap.index));
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      const header = await encodeSnapshotHeaderInSlices(snap);
      await writeFully(handle, header, 0);
      await writeFully(handle, snap.data, header.length);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, final);
    await syncDir(fs, dir);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw storageError(`could not write snapshot ${final}: ${describeError(err)}`, err);
  }
}
