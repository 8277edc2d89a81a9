/**
 * The mesh's virtual IPs (service -> address), kept current with one blocking query for the
 * whole agent: every transparent sidecar and the DNS read the same copy. Servers down: the
 * last copy stays.
 */
import type { TrellisClient } from '../../client/index.js';
import type { Clock } from '../../core/index.js';

export interface VipSource {
  /** The current map, or undefined until the first answer. */
  current(): ReadonlyMap<string, string> | undefined;
  /** Called after every change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void;
}

export class VipWatch implements VipSource {
  readonly #client: TrellisClient;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  #vips: Map<string, string> | undefined;
  #listeners = new Set<() => void>();
  #loop: Promise<void> | undefined;

  constructor(client: TrellisClient, clock: Clock) {
    this.#client = client;
    this.#clock = clock;
  }

  current(): ReadonlyMap<string, string> | undefined {
    return this.#vips;
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    this.#loop ??= this.#run();
    return () => this.#listeners.delete(fn);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const r = await this.#client.catalog.virtualIps({ index, wait: '5m', signal });
        failures = 0;
        index = r.index < index ? 0 : r.index;
        const next = new Map(Object.entries(r.value).sort(([a], [b]) => (a < b ? -1 : 1)));
        if (this.#vips && JSON.stringify([...next]) === JSON.stringify([...this.#vips])) continue;
        this.#vips = next;
        for (const fn of [...this.#listeners]) fn();
      } catch {
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          const t = this.#clock.setTimeout(
            resolve,
            Math.min(30_000, 200 * 2 ** Math.min(failures++, 8)),
          );
          signal.addEventListener(
            'abort',
            () => {
              this.#clock.clearTimeout(t);
              resolve();
            },
            { once: true },
          );
        });
      }
    }
  }
}
