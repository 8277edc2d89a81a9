/**
 * A live copy of every key under an etcd prefix: read once, then kept current by a watch.
 * If etcd compacted the history the watch would resume from, the prefix is read again.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { describeError } from '../../core/index.js';

export class PrefixView {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #log: { warn(obj: object, msg: string): void };
  readonly #entries = new Map<string, IKeyValue>();
  readonly #listeners: ((key: string, kv: IKeyValue | undefined) => void)[] = [];
  #watcher: Watcher | null = null;
  #closed = false;

  constructor(client: Etcd3, prefix: string, log: { warn(obj: object, msg: string): void }) {
    this.#client = client;
    this.#prefix = prefix;
    this.#log = log;
  }

  /** Key (without the prefix) -> its current key-value. */
  entries(): ReadonlyMap<string, IKeyValue> {
    return this.#entries;
  }

  /** Called for every put (kv) and delete (undefined), with the key without the prefix. */
  onChange(fn: (key: string, kv: IKeyValue | undefined) => void): void {
    this.#listeners.push(fn);
  }

  async start(): Promise<void> {
    const res = await this.#client.getAll().prefix(this.#prefix).exec();
    const seen = new Set<string>();
    for (const kv of res.kvs) {
      const key = kv.key.toString().slice(this.#prefix.length);
      seen.add(key);
      const old = this.#entries.get(key);
      if (old?.mod_revision === kv.mod_revision) continue;
      this.#entries.set(key, kv);
      this.#emit(key, kv);
    }
    for (const key of [...this.#entries.keys()]) {
      if (seen.has(key)) continue;
      this.#entries.delete(key);
      this.#emit(key, undefined);
    }
    if (this.#closed) return;
    const watcher = await this.#client
      .watch()
      .prefix(this.#prefix)
      .startRevision(String(Number(res.header.revision) + 1))
      .create();
    if (this.#closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.#watcher = watcher;
    watcher.on('put', (kv) => {
      const key = kv.key.toString().slice(this.#prefix.length);
      this.#entries.set(key, kv);
      this.#emit(key, kv);
    });
    watcher.on('delete', (kv) => {
      const key = kv.key.toString().slice(this.#prefix.length);
      if (!this.#entries.delete(key)) return;
      this.#emit(key, undefined);
    });
    watcher.on('error', (err) => void this.#resync(err));
  }

  async #resync(cause: unknown): Promise<void> {
    this.#log.warn(
      { err: describeError(cause), prefix: this.#prefix },
      'etcd watch cancelled; re-reading',
    );
    await this.#watcher?.cancel().catch(() => undefined);
    this.#watcher = null;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.start();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  #emit(key: string, kv: IKeyValue | undefined): void {
    for (const fn of this.#listeners) fn(key, kv);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#watcher?.cancel().catch(() => undefined);
  }
}
