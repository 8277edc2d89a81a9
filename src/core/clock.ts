/**
 * Time and randomness are injected so that tests can control them (design: determinism is
 * injected). Only src/core and src/bin touch Date.now() and Math.random() directly.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer): void;
}

export interface Timer {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};

export interface Random {
  /** A float in [0, 1). */
  next(): number;
}

export const systemRandom: Random = { next: () => Math.random() };

/** A uniformly random duration in [0, maxMs). */
export function jitter(random: Random, maxMs: number): number {
  return Math.floor(random.next() * maxMs);
}
