/**
 * The KV table: entries in a map plus a sorted key index for prefix reads, and tombstones that
 * remember the index at which each key was deleted, so that a read of a deleted key (or of a
 * prefix that lost a key) reports a higher X-Consul-Index than before the delete.
 */
import type { KVPair } from '../../api/index.js';
import { SortedKeys } from './sorted-keys.js';

export class KVTable {
  readonly entries = new Map<string, KVPair>();
  readonly keys = new SortedKeys();
  readonly tombstones = new Map<string, number>();
  readonly tombstoneKeys = new SortedKeys();

  get(key: string): KVPair | undefined {
    return this.entries.get(key);
  }

  put(entry: KVPair): void {
    if (!this.entries.has(entry.Key)) this.keys.insert(entry.Key);
    this.entries.set(entry.Key, entry);
    if (this.tombstones.delete(entry.Key)) this.tombstoneKeys.delete(entry.Key);
  }

  delete(key: string, index: number): KVPair | undefined {
    const old = this.entries.get(key);
    if (!old) return undefined;
    this.entries.delete(key);
    this.keys.delete(key);
    if (!this.tombstones.has(key)) this.tombstoneKeys.insert(key);
    this.tombstones.set(key, index);
    return old;
  }

  /** Restores a key to an earlier state (transaction rollback). */
  restore(key: string, entry: KVPair | undefined, tombstone: number | undefined): void {
    if (entry) {
      if (!this.entries.has(key)) this.keys.insert(key);
      this.entries.set(key, entry);
    } else if (this.entries.delete(key)) {
      this.keys.delete(key);
    }
    if (tombstone === undefined) {
      if (this.tombstones.delete(key)) this.tombstoneKeys.delete(key);
    } else {
      if (!this.tombstones.has(key)) this.tombstoneKeys.insert(key);
      this.tombstones.set(key, tombstone);
    }
  }

  *withPrefix(prefix: string): IterableIterator<KVPair> {
    for (const k of this.keys.withPrefix(prefix)) yield this.entries.get(k)!;
  }

  /** The highest modify or delete index under a prefix (exact key when `exact`). */
  maxIndex(prefix: string, exact: boolean): number {
    if (exact) return this.entries.get(prefix)?.ModifyIndex ?? this.tombstones.get(prefix) ?? 0;
    let m = 0;
    for (const e of this.withPrefix(prefix)) if (e.ModifyIndex > m) m = e.ModifyIndex;
    for (const k of this.tombstoneKeys.withPrefix(prefix)) {
      const t = this.tombstones.get(k)!;
      if (t > m) m = t;
    }
    return m;
  }
}
