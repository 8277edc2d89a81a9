/**
 * The last index at which each watchable thing changed ("svc:web", "node:n1", "services", ...).
 * A read's X-Consul-Index is the largest of the entries it depends on, so it rises on deletes
 * too and is unchanged by writes that could not change the read's result.
 */
import type { ChangeSet } from './watch.js';

export class IndexTable {
  #index = new Map<string, number>();

  get(key: string): number {
    return this.#index.get(key) ?? 0;
  }

  max(keys: readonly string[]): number {
    let m = 0;
    for (const k of keys) {
      const v = this.#index.get(k);
      if (v !== undefined && v > m) m = v;
    }
    return m;
  }

  bump(change: ChangeSet, index: number): void {
    for (const k of change.keys) this.#index.set(k, index);
  }

  keys(): IterableIterator<string> {
    return this.#index.keys();
  }

  toJSON(): [string, number][] {
    return [...this.#index];
  }

  static from(entries: [string, number][]): IndexTable {
    const t = new IndexTable();
    for (const [k, v] of entries) t.#index.set(k, v);
    return t;
  }
}

/** Watch-key names, in one place. */
export const K = {
  nodes: 'nodes',
  services: 'services',
  checks: 'checks',
  sessions: 'sessions',
  kv: 'kv',
  acl: 'acl',
  /** Any service-intentions entry (every intention read and the agents' caches). */
  intentions: 'intentions',
  caRoots: 'ca-roots',
  caConfig: 'ca-config',
  events: 'events',
  /** Any prepared query. */
  queries: 'queries',
  coordinates: 'coordinates',
  service: (name: string) => `svc:${name}`,
  node: (name: string) => `node:${name}`,
  session: (id: string) => `session:${id}`,
  nodeSessions: (node: string) => `node-sessions:${node}`,
  configKind: (kind: string) => `config:${kind}`,
  config: (kind: string, name: string) => `config:${kind}:${name}`,
} as const;
