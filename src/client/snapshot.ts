/**
 * /v1/snapshot: the whole catalog state as a file (save), and replacing the state with one
 * (restore). Both need a management token.
 */
import type { Transport } from './transport.js';

/** Saving or restoring a large catalog takes longer than an ordinary request. */
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

export interface SavedSnapshot {
  /** The file's bytes (gzip). */
  file: Buffer;
  /** The index the state was captured at. */
  index: number;
}

export interface SnapshotApi {
  save(opts?: { signal?: AbortSignal }): Promise<SavedSnapshot>;
  /** Resolves with the index the cluster continues from. */
  restore(file: Buffer, opts?: { signal?: AbortSignal }): Promise<number>;
}

export function createSnapshotApi(t: Transport): SnapshotApi {
  return {
    async save(opts) {
      const res = await t.request({
        method: 'GET',
        path: '/v1/snapshot',
        timeoutMs: SNAPSHOT_TIMEOUT_MS,
        ...(opts?.signal ? { signal: opts.signal } : {}),
      });
      const file = Buffer.isBuffer(res.body) ? res.body : Buffer.from(String(res.body));
      return { file, index: res.index ?? 0 };
    },
    async restore(file, opts) {
      const res = await t.request<{ Index: number }>({
        method: 'PUT',
        path: '/v1/snapshot',
        body: file,
        headers: { 'content-type': 'application/octet-stream' },
        timeoutMs: SNAPSHOT_TIMEOUT_MS,
        ...(opts?.signal ? { signal: opts.signal } : {}),
      });
      const body = res.body as { Index?: unknown };
      return typeof body === 'object' && typeof body.Index === 'number'
        ? body.Index
        : (res.index ?? 0);
    },
  };
}
