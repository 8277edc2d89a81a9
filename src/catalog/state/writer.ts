/**
 * The write path: every command gets the next index, goes to the durable store, and is applied
 * to the in-memory state only once it is on disk, in index order. A write is acknowledged (its
 * promise resolves) only after it is both durable and applied; a storage failure rejects it
 * and leaves the state untouched. Snapshots are taken every `snapshotEvery` applied writes.
 *
 *   propose(cmd) -> index = last + 1 -> store.append (group commit, fsync)
 *                -> [durable, in order] -> state.apply -> resolve(result)
 */
import { deferred, storageError, type Deferred } from '../../core/index.js';
import type { DurableStore } from '../store/types.js';
import type { Command } from './commands.js';
import { prepareRestore } from './restore.js';
import { serializeCapture, type ApplyResult, type StateStore } from './state-store.js';

interface Pending {
  index: number;
  cmd: Command;
  done: boolean;
  error: unknown;
  result: Deferred<ApplyResult>;
}

export interface WriterLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WriterOptions {
  /** Take a snapshot after this many applied writes (default 10,000). */
  snapshotEvery?: number;
  logger?: WriterLogger;
}

export class Writer {
  readonly #state: StateStore;
  readonly #store: DurableStore;
  readonly #queue: Pending[] = [];
  readonly #snapshotEvery: number;
  readonly #log: WriterLogger | undefined;
  #nextIndex: number;
  #sinceSnapshot = 0;
  #snapshotting: Promise<void> | null = null;
  #closed = false;
  /** A restore in progress: proposals wait for it, so none gets an index below the restore's. */
  #restoring: Promise<unknown> | null = null;
  readonly #restoredListeners: ((index: number) => void)[] = [];

  constructor(state: StateStore, store: DurableStore, opts: WriterOptions = {}) {
    this.#state = state;
    this.#store = store;
    this.#nextIndex = state.lastIndex;
    this.#snapshotEvery = opts.snapshotEvery ?? 10_000;
    this.#log = opts.logger;
  }

  propose(cmd: Command): Promise<ApplyResult> {
    if (this.#closed)
      return Promise.reject(storageError('The catalog is shutting down; the write was not made'));
    if (this.#restoring) {
      const retry = (): Promise<ApplyResult> => this.propose(cmd);
      return this.#restoring.then(retry, retry);
    }
    const p: Pending = {
      index: ++this.#nextIndex,
      cmd,
      done: false,
      error: undefined,
      result: deferred(),
    };
    this.#queue.push(p);
    this.#store.append({ index: p.index, command: cmd }).then(
      () => this.#settle(p, undefined),
      (err: unknown) => this.#settle(p, err ?? new Error('append failed')),
    );
    return p.result.promise;
  }

  #settle(p: Pending, error: unknown): void {
    p.done = true;
    p.error = error;
    // Apply strictly in index order: an entry waits for every earlier one to settle.
    while (this.#queue.length > 0 && this.#queue[0]!.done) {
      const head = this.#queue.shift()!;
      if (head.error !== undefined) {
        head.result.reject(head.error);
        continue;
      }
      try {
        head.result.resolve(this.#state.apply(head.cmd, head.index));
      } catch (err) {
        this.#log?.error(
          { err, index: head.index, type: head.cmd.type },
          'applying a durable command failed',
        );
        head.result.reject(storageError(`Internal error applying write ${head.index}`, err));
      }
      this.#sinceSnapshot++;
    }
    if (this.#sinceSnapshot >= this.#snapshotEvery && !this.#snapshotting) void this.snapshotNow();
  }

  /** Writes a snapshot of the applied state now (also used at shutdown and by tests). */
  snapshotNow(): Promise<void> {
    if (this.#snapshotting) return this.#snapshotting;
    this.#sinceSnapshot = 0;
    const capture = this.#state.capture();
    const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    this.#snapshotting = serializeCapture(capture, yieldNow)
      .then((data) => this.#store.snapshot({ index: capture.lastIndex, data }))
      .catch((err: unknown) =>
        this.#log?.warn({ err }, 'snapshot failed; the log keeps every write'),
      )
      .finally(() => {
        this.#snapshotting = null;
      });
    return this.#snapshotting;
  }

  /**
   * The restore: once every earlier write is applied, the restored state is written as the
   * store's newest snapshot at index max(last index, snapshot's index) + 1 (the log before it is
   * then superseded: recovery starts from that snapshot), and only then swapped in.
   */
  restore(data: Buffer): Promise<number> {
    if (this.#closed)
      return Promise.reject(storageError('The catalog is shutting down; the restore was not made'));
    const prior = this.#restoring ?? Promise.resolve();
    const run = prior
      .catch(() => undefined)
      .then(async () => {
        await Promise.allSettled(this.#queue.map((p) => p.result.promise));
        if (this.#snapshotting) await this.#snapshotting;
        const next = prepareRestore(
          this.#state,
          data,
          (snapIndex) => Math.max(this.#nextIndex, snapIndex) + 1,
        );
        const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
        const bytes = await serializeCapture(next.capture(), yieldNow);
        await this.#store.snapshot({ index: next.lastIndex, data: bytes });
        this.#state.replaceWith(next);
        this.#nextIndex = next.lastIndex;
        this.#sinceSnapshot = 0;
        for (const l of this.#restoredListeners) l(next.lastIndex);
        return next.lastIndex;
      });
    const tracked = run.finally(() => {
      if (this.#restoring === tracked) this.#restoring = null;
    });
    tracked.catch(() => undefined); // the caller gets `run`'s rejection
    this.#restoring = tracked;
    return run;
  }

  onRestored(listener: (index: number) => void): void {
    this.#restoredListeners.push(listener);
  }

  /** Waits for in-flight writes and snapshots, then refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#restoring) await this.#restoring.catch(() => undefined);
    await Promise.allSettled(this.#queue.map((p) => p.result.promise));
    if (this.#snapshotting) await this.#snapshotting;
  }
}
