/**
 * The watch loop over a blocking query, as Consul clients run it:
 *
 *   1. fetch with index 0 (answers at once with the current value and index)
 *   2. index differs from the last one seen -> onChange(value, index)
 *   3. index went backwards (server restored or replaced) -> next fetch uses index 0
 *   4. otherwise block on the index just seen; repeat from 2
 *   on error: wait 100ms, 200ms, 400ms ... up to 30s, then retry with the same index
 *   on abort: resolve
 */
import { systemClock, type Clock } from '../core/index.js';
import type { QueryResult } from './query.js';

/** Fetches the watched resource, blocking until its index exceeds `index` (0: no wait). */
export type WatchFetch<T> = (index: number, signal: AbortSignal) => Promise<QueryResult<T>>;

export type WatchHandler<T> = (value: T, index: number) => void | Promise<void>;

export interface WatchOptions {
  /** Stops the loop; watch() resolves once the current fetch has ended. */
  signal: AbortSignal;
  /** Timer source, injectable for tests. */
  clock?: Clock;
  /** First retry delay after an error; default 100ms. */
  minBackoffMs?: number;
  /** Longest retry delay; default 30s. */
  maxBackoffMs?: number;
  /** Told of each failed fetch and how long the loop waits before the next one. */
  onError?: (err: unknown, delayMs: number) => void;
}

export const MIN_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 30_000;

/**
 * Runs the watch loop until `opts.signal` aborts. An error thrown by `onChange` ends the
 * loop and rejects, since retrying would only repeat it.
 */
export async function watch<T>(
  fetch: WatchFetch<T>,
  onChange: WatchHandler<T>,
  opts: WatchOptions,
): Promise<void> {
  const { signal } = opts;
  const clock = opts.clock ?? systemClock;
  const minMs = opts.minBackoffMs ?? MIN_BACKOFF_MS;
  const maxMs = opts.maxBackoffMs ?? MAX_BACKOFF_MS;
  let next = 0;
  let seen: number | undefined;
  let failures = 0;

  while (!signal.aborted) {
    let result: QueryResult<T>;
    try {
      result = await fetch(next, signal);
    } catch (err) {
      if (signal.aborted) return;
      const delay = backoffDelay(failures++, minMs, maxMs);
      opts.onError?.(err, delay);
      await sleep(clock, delay, signal);
      continue;
    }
    failures = 0;
    if (signal.aborted) return;
    const { index } = result;
    if (index !== seen) await onChange(result.value, index);
    next = seen !== undefined && index < seen ? 0 : index;
    seen = index;
    // Without an index the endpoint does not block; pause so the loop cannot spin.
    if (index === 0) await sleep(clock, minMs, signal);
  }
}

/** The delay before retry number `failures` (0-based): min * 2^failures, capped at max. */
export function backoffDelay(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
