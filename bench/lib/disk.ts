/**
 * The disk's raw durable-write rate: one writer appending `recordBytes` to a file and calling
 * fdatasync after every write, as a write-ahead log without group commit would. This is the
 * ceiling for one-at-a-time durable writes on this disk. The `promises` variant does the same
 * through node:fs/promises, whose calls run on libuv's thread pool as the server's do, so it
 * adds the cost of the two thread hops per record.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { now } from './time.js';

export interface FsyncLoopResult {
  ops: number;
  elapsedMs: number;
  rate: number;
  latenciesMs: number[];
}

function finish(start: number, latencies: number[]): FsyncLoopResult {
  const elapsedMs = now() - start;
  return {
    ops: latencies.length,
    elapsedMs,
    rate: (latencies.length * 1000) / elapsedMs,
    latenciesMs: latencies,
  };
}

/** write + fdatasync with blocking calls on this thread. */
export function fsyncLoop(durationMs: number, recordBytes = 200): FsyncLoopResult {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-fsync-'));
  const record = Buffer.alloc(recordBytes, 0x61);
  const fd = openSync(join(dir, 'wal'), 'w');
  const latencies: number[] = [];
  try {
    let offset = 0;
    const start = now();
    while (now() < start + durationMs) {
      const t0 = now();
      writeSync(fd, record, 0, record.length, offset);
      fdatasyncSync(fd);
      latencies.push(now() - t0);
      offset += record.length;
    }
    return finish(start, latencies);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** write + fdatasync through node:fs/promises (libuv's thread pool), one at a time. */
export async function fsyncLoopPromises(
  durationMs: number,
  recordBytes = 200,
): Promise<FsyncLoopResult> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-fsync-'));
  const record = Buffer.alloc(recordBytes, 0x61);
  const handle = await open(join(dir, 'wal'), 'w');
  const latencies: number[] = [];
  try {
    let offset = 0;
    const start = now();
    while (now() < start + durationMs) {
      const t0 = now();
      await handle.write(record, 0, record.length, offset);
      await handle.datasync();
      latencies.push(now() - t0);
      offset += record.length;
    }
    return finish(start, latencies);
  } finally {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
