/**
 * Answers to reads, remembered until the next write. When a write wakes many blocking queries
 * that read the same thing (thousands of watchers of one service), the first one runs the query
 * and serializes it; the others reuse both. Any write moves the state's index and so makes
 * every entry stale; the map is bounded so idle keys cannot pile up.
 */
import type { QueryResult } from '../state/queries.js';

export interface CachedBody {
  status: number;
  body: Buffer | null;
}

interface Entry {
  /** The state's lastIndex when the result was computed. */
  at: number;
  result: QueryResult<unknown>;
  body?: CachedBody;
}

export class ResponseCache {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  /** The result for `key` at state index `at`, computing it with `run` when not cached. */
  result<T>(key: string, at: number, run: () => QueryResult<T>): QueryResult<T> {
    const e = this.#entries.get(key);
    if (e && e.at === at) return e.result as QueryResult<T>;
    const result = run();
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { at, result });
    return result;
  }

  /** The serialized answer for exactly this result object, if one was made. */
  body(key: string, result: QueryResult<unknown>): CachedBody | undefined {
    const e = this.#entries.get(key);
    return e?.result === result ? e.body : undefined;
  }

  setBody(key: string, result: QueryResult<unknown>, body: CachedBody): void {
    const e = this.#entries.get(key);
    if (e?.result === result) e.body = body;
  }
}
