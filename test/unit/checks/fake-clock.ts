// A manual clock and scripted randomness, so scheduler tests control time exactly.
import type { Clock, Random, Timer } from '../../../src/core/index.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets promise continuations (and their follow-on timers) run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private current = 1_000_000;
  private seq = 0;
  private readonly timers = new Map<Timer, Pending>();

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const t: Timer = {};
    this.timers.set(t, { at: this.current + Math.max(0, ms), seq: this.seq++, fn });
    return t;
  }

  clearTimeout(t: Timer): void {
    this.timers.delete(t);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing due timers in order and letting async work settle between. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await flush();
    for (;;) {
      let next: [Timer, Pending] | undefined;
      for (const entry of this.timers) {
        const p = entry[1];
        if (p.at > target) continue;
        if (!next || p.at < next[1].at || (p.at === next[1].at && p.seq < next[1].seq))
          next = entry;
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.current = next[1].at;
      next[1].fn();
      await flush();
    }
    this.current = target;
  }
}

/** Returns the given values in turn, then the last one forever. */
export function scriptedRandom(...values: number[]): Random {
  let i = 0;
  return { next: () => values[Math.min(i++, values.length - 1)] ?? 0 };
}
