/**
 * A sorted list of strings with binary-search insert, delete and prefix ranges: the KV table's
 * index for `recurse` and `keys` reads, so a prefix read costs O(log n + matches), not O(n).
 */
export class SortedKeys {
  #keys: string[] = [];

  get size(): number {
    return this.#keys.length;
  }

  #lowerBound(key: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(key: string): void {
    const i = this.#lowerBound(key);
    if (this.#keys[i] !== key) this.#keys.splice(i, 0, key);
  }

  delete(key: string): void {
    const i = this.#lowerBound(key);
    if (this.#keys[i] === key) this.#keys.splice(i, 1);
  }

  /** Keys that start with `prefix`, in order. */
  *withPrefix(prefix: string): IterableIterator<string> {
    for (let i = this.#lowerBound(prefix); i < this.#keys.length; i++) {
      const k = this.#keys[i]!;
      if (!k.startsWith(prefix)) return;
      yield k;
    }
  }

  all(): readonly string[] {
    return this.#keys;
  }
}
