/**
 * Passive outlier ejection (Envoy's idea, kept small): an endpoint that could not take a
 * request (connection refused, a failed or wrong-identity handshake, or its proxy answering
 * that its application is unreachable) is left out of the balancer for a while: 10 s, doubling
 * for each ejection in a row up to 60 s. Ejections never empty the pool: when every endpoint
 * is ejected they are all used again. The catalog's health removes a dead instance too; this
 * covers the seconds until it does.
 */
import type { Clock } from '../core/index.js';
import { endpointKey } from './balance.js';
import type { Endpoint, UpstreamPlan } from './plan.js';

export const EJECT_BASE_MS = 10_000;
export const EJECT_MAX_MS = 60_000;

interface Ejection {
  until: number;
  /** Ejections in a row (reset by a success after the last one ended). */
  times: number;
}

export class Outliers {
  readonly #ejected = new Map<string, Ejection>();

  constructor(private readonly clock: Clock) {}

  /** Leaves `ep` out; returns for how long (ms), or undefined when it already was. */
  eject(ep: Endpoint): number | undefined {
    const k = endpointKey(ep);
    const now = this.clock.now();
    const prev = this.#ejected.get(k);
    if (prev && prev.until > now) return undefined;
    const times = (prev?.times ?? 0) + 1;
    const ms = Math.min(EJECT_BASE_MS * 2 ** (times - 1), EJECT_MAX_MS);
    this.#ejected.set(k, { until: now + ms, times });
    return ms;
  }

  /** The endpoint answered: its record of ejections is forgotten once the last has ended. */
  succeeded(ep: Endpoint): void {
    if (this.#ejected.size === 0) return;
    const k = endpointKey(ep);
    const e = this.#ejected.get(k);
    if (e && e.until <= this.clock.now()) this.#ejected.delete(k);
  }

  /**
   * A test for "skip this endpoint" over `u`'s endpoints right now, or undefined when none is
   * to be skipped (nothing ejected, or everything is: then all are used).
   */
  skipper(u: UpstreamPlan): ((ep: Endpoint) => boolean) | undefined {
    if (this.#ejected.size === 0) return undefined;
    const now = this.clock.now();
    const out = (ep: Endpoint): boolean => (this.#ejected.get(endpointKey(ep))?.until ?? 0) > now;
    let left = 0;
    for (const ep of u.endpoints) if (!out(ep)) left++;
    return left === 0 || left === u.endpoints.length ? undefined : out;
  }

  /** Forgets endpoints that left every plan (so the map stays the size of the mesh). */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.#ejected.keys()) if (!keys.has(k)) this.#ejected.delete(k);
  }
}
