/**
 * Wake-ups for blocking queries. A query names what it read as a WatchSpec (table keys such as
 * "svc:web", exact KV keys and KV prefixes); a write names what it changed; only the waiters
 * whose spec intersects the change are woken. So an unrelated write wakes nobody.
 */
export interface WatchSpec {
  keys: string[];
  kvKeys?: string[];
  kvPrefixes?: string[];
}

export interface ChangeSet {
  keys: Set<string>;
  kvKeys: Set<string>;
}

type Waiter = () => void;

export class WatchHub {
  #byKey = new Map<string, Set<Waiter>>();
  #byKvKey = new Map<string, Set<Waiter>>();
  #byKvPrefix = new Map<string, Set<Waiter>>();

  /** Calls `wake` once at the first change that touches `spec`; returns the cancel function. */
  subscribe(spec: WatchSpec, wake: () => void): () => void {
    let done = false;
    const waiter: Waiter = () => {
      if (done) return;
      done = true;
      cancel();
      wake();
    };
    const cancel = (): void => {
      done = true;
      for (const k of spec.keys) remove(this.#byKey, k, waiter);
      for (const k of spec.kvKeys ?? []) remove(this.#byKvKey, k, waiter);
      for (const p of spec.kvPrefixes ?? []) remove(this.#byKvPrefix, p, waiter);
    };
    for (const k of spec.keys) add(this.#byKey, k, waiter);
    for (const k of spec.kvKeys ?? []) add(this.#byKvKey, k, waiter);
    for (const p of spec.kvPrefixes ?? []) add(this.#byKvPrefix, p, waiter);
    return cancel;
  }

  notify(change: ChangeSet): void {
    const hit = new Set<Waiter>();
    for (const k of change.keys) collect(this.#byKey.get(k), hit);
    for (const key of change.kvKeys) {
      collect(this.#byKvKey.get(key), hit);
      if (this.#byKvPrefix.size === 0) continue;
      // Every prefix of the key, including "" (a recurse over the whole store).
      for (let i = 0; i <= key.length; i++) collect(this.#byKvPrefix.get(key.slice(0, i)), hit);
    }
    for (const w of hit) w();
  }

  /** Wakes every waiter (the whole state was replaced by a restore). */
  notifyAll(): void {
    const hit = new Set<Waiter>();
    for (const m of [this.#byKey, this.#byKvKey, this.#byKvPrefix])
      for (const set of m.values()) collect(set, hit);
    for (const w of hit) w();
  }

  /** Number of registered waiters (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const m of [this.#byKey, this.#byKvKey, this.#byKvPrefix])
      for (const s of m.values()) n += s.size;
    return n;
  }
}

function add(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(w);
}

function remove(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(w);
  if (set.size === 0) map.delete(key);
}

function collect(set: Set<Waiter> | undefined, into: Set<Waiter>): void {
  if (set) for (const w of set) into.add(w);
}
