/**
 * Consul's blocking queries: answer at once when the caller's index is stale (or 0); otherwise
 * wait until a write touches what the query read, or until `wait` (+ up to wait/16 jitter)
 * passes, and answer with whatever is current then.
 */
import { jitter, type Clock, type Random } from '../../core/index.js';
import type { QueryResult } from './queries.js';
import type { WatchHub } from './watch.js';

export interface BlockingOptions {
  minIndex: number;
  waitMs: number;
  clock: Clock;
  random: Random;
  signal?: AbortSignal;
}

export async function blockingQuery<T>(
  hub: WatchHub,
  run: () => QueryResult<T>,
  opts: BlockingOptions,
): Promise<QueryResult<T>> {
  let r = run();
  // An index below the caller's means the state was reset: answer so the client resyncs.
  if (opts.minIndex === 0 || r.index !== opts.minIndex) return r;
  const deadline =
    opts.clock.now() + opts.waitMs + jitter(opts.random, Math.max(1, opts.waitMs / 16));
  while (r.index === opts.minIndex) {
    const remaining = deadline - opts.clock.now();
    if (remaining <= 0 || opts.signal?.aborted) return r;
    await new Promise<void>((resolve) => {
      const timer = opts.clock.setTimeout(finish, remaining);
      const cancel = hub.subscribe(r.watch, finish);
      const onAbort = (): void => finish();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      function finish(): void {
        opts.clock.clearTimeout(timer);
        cancel();
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      }
    });
    // Let the write that woke us answer its own client first; thousands of woken reads
    // would otherwise run ahead of it in the microtask queue.
    await new Promise<void>((resolve) => setImmediate(resolve));
    r = run();
  }
  return r;
}
