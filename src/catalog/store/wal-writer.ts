/**
 * The append path with group commit. Appends are framed as they arrive and queued; one drain
 * loop writes everything queued as a single buffer with one write and one fdatasync, so while a
 * sync is in flight the next batch builds up behind it. A batch whose write or sync fails is
 * rejected as a whole and cut off the file again, so no half-written record stays behind a
 * later acknowledged one. If that cut fails, the writer stops for good (fail-stop).
 */
import { join } from 'node:path';
import { deferred, type Deferred } from '../../core/deferred.js';
import { describeError, storageError, type MeshError } from '../../core/errors.js';
import { segmentName } from './file-names.js';
import type { SegmentInfo } from './retention.js';
import { syncDir, writeFully, type StoreFileHandle, type StoreFs } from './store-fs.js';
import type { LogEntry, StoreStats } from './types.js';
import { encodeRecord, encodeSegmentHeader } from './wal-format.js';

/** Caps one write so a huge backlog does not become one huge buffer. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

interface Pending {
  index: number;
  record: Buffer;
  done: Deferred<void>;
}

interface ActiveSegment {
  path: string;
  handle: StoreFileHandle;
  /** Last durable index when the segment was created; written into its header. */
  prev: number;
  /** Bytes durably written; the next batch goes here. */
  offset: number;
  lastIndex: number;
  /** The directory entry is durable only after the directory is fsynced once. */
  dirSynced: boolean;
}

export interface WalWriterOptions {
  fs: StoreFs;
  dir: string;
  segmentBytes: number;
  /** Highest index already in the store (log or snapshot). */
  lastIndex: number;
  /** Closed segments found on disk, ascending. */
  segments: SegmentInfo[];
  /** Shared counters, updated in place. */
  stats: StoreStats;
}

export class WalWriter {
  private readonly fs: StoreFs;
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly stats: StoreStats;
  /** Closed segments, ascending. */
  private readonly segments: SegmentInfo[];
  private queue: Pending[] = [];
  private active: ActiveSegment | null = null;
  /** Highest index accepted into the queue: the next one must be above it. */
  private lastAccepted: number;
  /** Highest index known durable: the prev of the next segment. */
  private lastDurable: number;
  private draining: Promise<void> | null = null;
  /** Serializes batches, rolls and close. */
  private lock: Promise<void> = Promise.resolve();
  private fatal: MeshError | null = null;
  private closing = false;

  constructor(opts: WalWriterOptions) {
    this.fs = opts.fs;
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes;
    this.stats = opts.stats;
    this.segments = [...opts.segments];
    this.lastAccepted = opts.lastIndex;
    this.lastDurable = opts.lastIndex;
  }

  /** Set once the writer has stopped for good; every later append fails with it. */
  failure(): MeshError | null {
    return this.fatal;
  }

  append(entry: LogEntry): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closing) return Promise.reject(storageError('append: the store is closed'));
    const index = entry?.index;
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index <= this.lastAccepted) {
      return Promise.reject(
        storageError(
          `append: index ${String(index)} must be an integer greater than ${this.lastAccepted} ` +
            '(indexes must strictly increase; this is a programming error)',
        ),
      );
    }
    let record: Buffer;
    try {
      record = encodeRecord(entry);
    } catch (err) {
      const msg = `append: entry ${index} cannot be stored as JSON: ${describeError(err)}`;
      return Promise.reject(storageError(msg, err));
    }
    this.lastAccepted = index;
    const done = deferred<void>();
    this.queue.push({ index, record, done });
    this.draining ??= this.drain();
    return done.promise;
  }

  /** Appends at or below `index` would be hidden by a snapshot at it, so refuse them. */
  raiseFloor(index: number): void {
    this.lastAccepted = Math.max(this.lastAccepted, index);
  }

  /** Closes the active segment so everything before it can be compacted. */
  roll(): Promise<void> {
    return this.exclusive(async () => {
      if (this.active && this.active.offset > 0) await this.closeActive();
    });
  }

  /** Removes and returns the closed segments that lie entirely at or below `floor`. */
  takeCovered(floor: number): SegmentInfo[] {
    // lastIndex ascends with the segments, so the covered ones are a prefix.
    let n = 0;
    while (n < this.segments.length && this.segments[n]!.lastIndex <= floor) n++;
    return this.segments.splice(0, n);
  }

  /** Writes everything queued, then closes the active segment. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.draining) await this.draining;
    await this.exclusive(() => this.closeActive());
  }

  private async drain(): Promise<void> {
    // Yield once so that appends issued in the same synchronous run share the first batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      await this.exclusive(() => this.writeBatch(batch)).catch((err: unknown) => {
        // writeBatch reports I/O failures itself; this is only for the unexpected.
        const msg = `write-ahead log: unexpected failure writing a batch: ${describeError(err)}`;
        rejectAll(batch, storageError(msg, err));
      });
    }
    this.draining = null;
  }

  private takeBatch(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || bytes < MAX_BATCH_BYTES)) {
      bytes += this.queue[n]!.record.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Never throws: every outcome is delivered through the batch's promises. */
  private async writeBatch(batch: Pending[]): Promise<void> {
    if (this.fatal) return rejectAll(batch, this.fatal);
    let seg: ActiveSegment;
    try {
      seg = this.active ?? (await this.createSegment(batch[0]!.index));
    } catch (err) {
      const path = join(this.dir, segmentName(batch[0]!.index));
      const msg = `could not create write-ahead log segment ${path}: ${describeError(err)}`;
      this.stats.failedBatches++;
      return rejectAll(batch, storageError(msg, err));
    }
    const parts = batch.map((p) => p.record);
    if (seg.offset === 0) parts.unshift(encodeSegmentHeader(seg.prev));
    const buf = Buffer.concat(parts);
    const start = seg.offset;
    let step = 'write';
    this.stats.batches++;
    try {
      await writeFully(seg.handle, buf, start);
      step = 'fdatasync';
      this.stats.syncs++;
      await seg.handle.datasync();
      if (!seg.dirSynced) {
        step = 'directory fsync';
        await syncDir(this.fs, this.dir);
        seg.dirSynced = true;
      }
    } catch (err) {
      this.stats.failedBatches++;
      const cut = await this.rewind(seg, start);
      const outcome = cut
        ? 'the entries were not stored'
        : 'the store could not remove them and has stopped; they may reappear after a restart';
      const error = storageError(
        `write-ahead log ${seg.path}: ${step} of ${batch.length} entries at offset ${start} ` +
          `failed: ${describeError(err)}; ${outcome}`,
        err,
      );
      return rejectAll(batch, error);
    }
    const last = batch[batch.length - 1]!.index;
    seg.offset = start + buf.length;
    seg.lastIndex = last;
    this.lastDurable = last;
    this.stats.appends += batch.length;
    for (const p of batch) p.done.resolve();
    if (seg.offset >= this.segmentBytes) await this.closeActive();
  }

  private async createSegment(firstIndex: number): Promise<ActiveSegment> {
    const path = join(this.dir, segmentName(firstIndex));
    const handle = await this.fs.open(path, 'wx');
    const prev = this.lastDurable;
    this.active = { path, handle, prev, offset: 0, lastIndex: prev, dirSynced: false };
    return this.active;
  }

  /** Cuts a failed batch off the segment; if that fails too, stops the writer (false). */
  private async rewind(seg: ActiveSegment, offset: number): Promise<boolean> {
    try {
      await seg.handle.truncate(offset);
      await seg.handle.datasync();
      return true;
    } catch (err) {
      this.fatal = storageError(
        `write-ahead log ${seg.path} could not be cut back to offset ${offset} after a failed ` +
          `write (${describeError(err)}); refusing all further writes so that nothing is ` +
          'acknowledged behind a half-written record. Fix the disk and restart to recover.',
        err,
      );
      this.active = null;
      await seg.handle.close().catch(() => undefined);
      return false;
    }
  }

  private async closeActive(): Promise<void> {
    const seg = this.active;
    if (!seg) return;
    this.active = null;
    // The data is already synced, so a failing close loses nothing.
    await seg.handle.close().catch(() => undefined);
    if (seg.offset === 0) {
      // Created but never written (its first batch failed): leave no empty segment behind.
      await this.fs.unlink(seg.path).catch(() => undefined);
      return;
    }
    this.segments.push({ path: seg.path, lastIndex: seg.lastIndex });
  }
}

function rejectAll(batch: Pending[], err: MeshError): void {
  for (const p of batch) p.done.reject(err);
}
