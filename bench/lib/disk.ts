/**
 * The disk's raw durable-write rate: one writer appending `recordBytes` to a file and calling
 * fdatasync after every write, as a write-ahead log without group commit would. This is the
 * ceiling for one-at-a-time durable writes on this disk.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { now } from './time.js';

export interface FsyncLoopResult {
  ops: number;
  elapsedMs: number;
  rate: number;
  latenciesMs: number[];
  dir: string;
}

export function fsyncLoop(durationMs: number, recordBytes = 200): FsyncLoopResult {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-fsync-'));
  const record = Buffer.alloc(recordBytes, 0x61);
  const fd = openSync(join(dir, 'wal'), 'w');
  const latencies: number[] = [];
  try {
    let offset = 0;
    const start = now();
    const deadline = start + durationMs;
    while (now() < deadline) {
      const t0 = now();
      writeSync(fd, record, 0, record.length, offset);
      fdatasyncSync(fd);
      latencies.push(now() - t0);
      offset += record.length;
    }
    const elapsedMs = now() - start;
    return { ops: latencies.length, elapsedMs, rate: (latencies.length * 1000) / elapsedMs, latenciesMs: latencies, dir };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
