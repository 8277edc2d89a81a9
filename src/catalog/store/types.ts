/**
 * The contract between the catalog state machine and its durable store. The server appends a
 * command, waits for append() to resolve (the entry is on disk), then applies and acknowledges it.
 */
import type { StoreFs } from './store-fs.js';

/** One state-machine command. `command` must be a plain JSON value. */
export interface LogEntry {
  index: number;
  command: unknown;
}

/** The server's serialized state as of `index` (every entry <= index is applied in it). */
export interface SnapshotData {
  index: number;
  data: Buffer;
}

/** What open() found on disk: the newest usable snapshot and the log entries after it. */
export interface Recovered {
  snapshot: SnapshotData | null;
  /** Entries with index > snapshot.index (or all entries), ascending. */
  entries: LogEntry[];
  /** Repairs made while opening (torn tail dropped, leftover files removed, ...). */
  warnings: string[];
}

export interface DurableStore {
  /** Creates the directory if missing and recovers what is on disk. */
  open(): Promise<Recovered>;
  /** Resolves only after the entry is fsynced. Promises settle in append order. */
  append(entry: LogEntry): Promise<void>;
  /** Durably writes the snapshot, then compacts log data it covers. */
  snapshot(snap: SnapshotData): Promise<void>;
  /** Flushes pending appends and closes files. */
  close(): Promise<void>;
}

export interface StoreLogger {
  warn(obj: object, msg: string): void;
}

/** Counters for tests and metrics: appends / syncs is the group-commit ratio. */
export interface StoreStats {
  /** Entries made durable. */
  appends: number;
  /** fdatasync calls on the write-ahead log. */
  syncs: number;
  /** Write batches attempted (successful or not). */
  batches: number;
  /** Batches rejected because a write or sync failed. */
  failedBatches: number;
  /** Snapshots written. */
  snapshots: number;
}

export interface EmbeddedStore extends DurableStore {
  stats(): StoreStats;
}

export interface EmbeddedStoreOptions {
  dir: string;
  /** Roll to a new segment once the current one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * Snapshots to keep (1 or more, default 2). The log is kept back to the oldest kept snapshot,
   * so falling back to it when the newest is unreadable loses nothing.
   */
  keepSnapshots?: number;
  logger?: StoreLogger;
  /** File-system access; tests inject failures through it. Default: node:fs/promises. */
  fs?: StoreFs;
}
