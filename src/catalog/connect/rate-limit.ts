/**
 * Per-agent limits on certificate signing: a token bucket per node (rate per second, burst of
 * twice that), so one misbehaving or compromised host cannot keep the CA busy for everyone.
 *
 *   SigningLimiter        one server (embedded store): buckets in memory
 *   EtcdSigningLimiter    servers on etcd: one bucket per node in etcd, shared by every server
 *                         (catalog/etcd/etcd-signing-limiter.ts), so spreading requests over
 *                         several servers gains a host nothing
 */

export interface SigningLimits {
  /** True when `key` may sign now; `rate` 0 means unlimited. Rejects when it cannot tell. */
  take(key: string, rate: number, now: number): Promise<boolean>;
}

/** A bucket's tokens as of `at` (ms since the epoch, the clock of the server that wrote it). */
export interface Bucket {
  tokens: number;
  at: number;
}

/** The burst a rate allows: twice the rate. */
export function burstOf(rate: number): number {
  return rate * 2;
}

/**
 * Refills `bucket` (none: a full one) up to `now` and takes one token if there is one. `fullInMs`
 * is how long the new bucket takes to be full again: after that, forgetting it changes nothing.
 */
export function takeToken(
  bucket: Bucket | undefined,
  rate: number,
  now: number,
): { allowed: boolean; bucket: Bucket; fullInMs: number } {
  const burst = burstOf(rate);
  // Another server's clock may run ahead of ours: never count negative time.
  const elapsed = bucket ? Math.max(0, now - bucket.at) : 0;
  const tokens = bucket ? Math.min(burst, bucket.tokens + (elapsed / 1000) * rate) : burst;
  const allowed = tokens >= 1;
  const left = allowed ? tokens - 1 : tokens;
  return {
    allowed,
    // Counted as of the later of the two times, so a slow request cannot grant refill twice.
    bucket: { tokens: left, at: Math.max(now, bucket?.at ?? now) },
    fullInMs: Math.ceil(((burst - left) / rate) * 1000),
  };
}

/** Buckets in this process's memory. Idle buckets are forgotten; the map is bounded. */
export class SigningLimiter implements SigningLimits {
  #buckets = new Map<string, Bucket>();

  take(key: string, rate: number, now: number): Promise<boolean> {
    if (rate <= 0) return Promise.resolve(true);
    const t = takeToken(this.#buckets.get(key), rate, now);
    if (this.#buckets.size > 100_000) this.#buckets.clear();
    this.#buckets.set(key, t.bucket);
    return Promise.resolve(t.allowed);
  }
}
