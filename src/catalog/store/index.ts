/**
 * store: the catalog's embedded durable store (write-ahead log + snapshots in one directory).
 */
export { createEmbeddedStore } from './embedded-store.js';
export type {
  DurableStore,
  EmbeddedStore,
  EmbeddedStoreOptions,
  LogEntry,
  Recovered,
  SnapshotData,
  StoreLogger,
  StoreStats,
} from './types.js';
export type { StoreFileHandle, StoreFs } from './store-fs.js';
