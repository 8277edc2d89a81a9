/**
 * Per-agent limits on certificate signing: a token bucket per node (rate per second, burst of
 * twice that), so one misbehaving or compromised host cannot keep the CA busy for everyone.
 * Idle buckets are forgotten; the map is bounded.
 */
export class SigningLimiter {
  #buckets = new Map<string, { tokens: number; at: number }>();

  /** True when `key` may sign now; `rate` 0 means unlimited. */
  take(key: string, rate: number, now: number): boolean {
    if (rate <= 0) return true;
    const burst = rate * 2;
    const b = this.#buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) {
      this.#buckets.set(key, b);
      return false;
    }
    b.tokens -= 1;
    if (this.#buckets.size > 100_000) this.#buckets.clear();
    this.#buckets.set(key, b);
    return true;
  }
}
