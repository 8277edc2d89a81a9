/**
 * The seam between the catalog and where its commands are made durable. `Writer` (the embedded
 * write-ahead log) and `EtcdLog` (a command log replicated through etcd) both implement it; the
 * routes, liveness and session timers only ever propose commands through it.
 */
import type { Command } from './commands.js';
import type { ApplyResult } from './state-store.js';

export interface CommandLog {
  /**
   * Makes `cmd` durable, applies it to this server's state in log order and resolves with its
   * result. Rejects with a storage error (status 500) when the store could not take it.
   */
  propose(cmd: Command): Promise<ApplyResult>;
  /** Writes a snapshot of the applied state now (also used at shutdown and by tests). */
  snapshotNow(): Promise<void>;
  /**
   * Replaces the whole state with a serialized state (a snapshot's) at a new index above every
   * index used so far, durably: a restart comes back with it. Resolves with that index. Throws
   * a 400 when the data cannot be loaded (nothing changed) or a 500 when the store failed.
   */
  restore(data: Buffer): Promise<number>;
  /** Called on this server after a restore was applied to its state (any server's restore). */
  onRestored(listener: (index: number) => void): void;
  /** Waits for in-flight writes, then refuses new ones. */
  close(): Promise<void>;
}
