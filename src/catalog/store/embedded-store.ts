/**
 * The embedded durable store: a segmented write-ahead log plus snapshots in one directory.
 * This module wires recovery, the group-commit writer and snapshot retention together; each of
 * those lives in its own module.
 */
import { join } from 'node:path';
import { describeError, isMeshError, storageError } from '../../core/errors.js';
import { snapshotName } from './file-names.js';
import { recover, type RecoveryResult } from './recovery.js';
import { planRetention } from './retention.js';
import { writeSnapshotFile } from './snapshot-file.js';
import { nodeFs, syncDir, type StoreFs } from './store-fs.js';
import type {
  EmbeddedStore,
  EmbeddedStoreOptions,
  LogEntry,
  Recovered,
  SnapshotData,
  StoreLogger,
  StoreStats,
} from './types.js';
import { WalWriter } from './wal-writer.js';

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const DEFAULT_KEEP_SNAPSHOTS = 2;
const silentLogger: StoreLogger = { warn: () => undefined };

export function createEmbeddedStore(opts: EmbeddedStoreOptions): EmbeddedStore {
  return new Store(opts);
}

class Store implements EmbeddedStore {
  private readonly dir: string;
  private readonly fs: StoreFs;
  private readonly logger: StoreLogger;
  private readonly segmentBytes: number;
  private readonly keepSnapshots: number;
  private readonly counters: StoreStats = {
    appends: 0,
    syncs: 0,
    batches: 0,
    failedBatches: 0,
    snapshots: 0,
  };
  private state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private writer: WalWriter | null = null;
  /** Snapshots on disk, newest first. */
  private snapshotIndexes: number[] = [];
  /** Snapshots run one at a time, in call order. */
  private snapshotChain: Promise<void> = Promise.resolve();

  constructor(opts: EmbeddedStoreOptions) {
    this.dir = opts.dir;
    this.fs = opts.fs ?? nodeFs;
    this.logger = opts.logger ?? silentLogger;
    this.segmentBytes = positiveInt(opts.segmentBytes, DEFAULT_SEGMENT_BYTES, 'segmentBytes');
    this.keepSnapshots = positiveInt(opts.keepSnapshots, DEFAULT_KEEP_SNAPSHOTS, 'keepSnapshots');
  }

  async open(): Promise<Recovered> {
    if (this.state !== 'new') throw storageError(`store ${this.dir}: open() may be called once`);
    this.state = 'opening';
    let result: RecoveryResult;
    try {
      result = await recover(this.fs, this.dir, this.logger);
    } catch (err) {
      this.state = 'new'; // nothing was opened: a later open() may retry
      if (isMeshError(err)) throw err;
      throw storageError(`could not open store ${this.dir}: ${describeError(err)}`, err);
    }
    this.snapshotIndexes = result.snapshotIndexes;
    this.writer = new WalWriter({
      fs: this.fs,
      dir: this.dir,
      segmentBytes: this.segmentBytes,
      lastIndex: result.lastIndex,
      segments: result.segments,
      stats: this.counters,
    });
    this.state = 'open';
    return result.recovered;
  }

  append(entry: LogEntry): Promise<void> {
    if (this.state !== 'open' || !this.writer) {
      return Promise.reject(storageError(`store ${this.dir} is not open (${this.state})`));
    }
    return this.writer.append(entry);
  }

  snapshot(snap: SnapshotData): Promise<void> {
    const run = this.snapshotChain.then(() => this.writeSnapshot(snap));
    this.snapshotChain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.snapshotChain;
    await this.writer?.close();
  }

  stats(): StoreStats {
    return { ...this.counters };
  }

  private async writeSnapshot(snap: SnapshotData): Promise<void> {
    const writer = this.writer;
    if (this.state !== 'open' || !writer) {
      throw storageError(`store ${this.dir} is not open (${this.state})`);
    }
    const failure = writer.failure();
    if (failure) throw failure;
    const newest = this.snapshotIndexes[0] ?? 0;
    if (!Number.isSafeInteger(snap.index) || snap.index < newest || !Buffer.isBuffer(snap.data)) {
      throw storageError(
        `snapshot: index ${String(snap.index)} must be an integer >= ${newest} with Buffer data ` +
          '(this is a programming error)',
      );
    }
    await writeSnapshotFile(this.fs, this.dir, snap);
    this.counters.snapshots++;
    this.snapshotIndexes.unshift(snap.index);
    writer.raiseFloor(snap.index);
    await writer.roll();
    await this.compact(writer);
  }

  /**
   * Deletes what the kept snapshots make redundant. The snapshot is already durable, so a
   * failure here only leaves extra files behind: warn instead of failing the snapshot.
   */
  private async compact(writer: WalWriter): Promise<void> {
    const plan = planRetention(this.snapshotIndexes, this.keepSnapshots);
    this.snapshotIndexes = plan.keep;
    const doomed = [
      ...plan.drop.map((index) => join(this.dir, snapshotName(index))),
      ...writer.takeCovered(plan.floor).map((s) => s.path),
    ];
    if (doomed.length === 0) return;
    for (const path of doomed) {
      await this.fs.unlink(path).catch((err: unknown) => this.warnCleanup(path, err));
    }
    await syncDir(this.fs, this.dir).catch((err: unknown) => this.warnCleanup(this.dir, err));
  }

  private warnCleanup(path: string, err: unknown): void {
    this.logger.warn({ path, err: describeError(err) }, `store cleanup failed for ${path}`);
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw storageError(`store option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}
