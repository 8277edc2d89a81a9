import { expect } from 'chai';
import type { Clock, Timer } from '../../../src/core/index.js';
import { backoffDelay, watch, type QueryResult } from '../../../src/client/index.js';

/** A clock whose timers fire on the next turn of the event loop, recording each delay. */
function fastClock(): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => 0,
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return setImmediate(fn) as unknown as Timer;
    },
    clearTimeout: (t) => clearImmediate(t as unknown as NodeJS.Immediate),
  };
}

type Step<T> = QueryResult<T> | Error;

/**
 * A fetch that plays `steps` in order, recording the index each call asked for, then aborts
 * the watch once they are used up.
 */
function scripted<T>(steps: Step<T>[], ctl: AbortController) {
  const asked: number[] = [];
  const fetch = async (index: number): Promise<QueryResult<T>> => {
    asked.push(index);
    const step = steps.shift();
    if (step === undefined) {
      ctl.abort();
      throw new Error('done');
    }
    if (step instanceof Error) throw step;
    return step;
  };
  return { fetch, asked };
}

describe('watch loop', () => {
  it('starts at index 0, re-issues with the last index, and reports only changes', async () => {
    const ctl = new AbortController();
    const { fetch, asked } = scripted(
      [
        { value: 'a', index: 5 },
        { value: 'a', index: 5 }, // wait timed out: no change
        { value: 'b', index: 7 },
      ],
      ctl,
    );
    const seen: [string, number][] = [];
    await watch(fetch, (v, i) => void seen.push([v, i]), {
      signal: ctl.signal,
      clock: fastClock(),
    });
    expect(seen).to.deep.equal([
      ['a', 5],
      ['b', 7],
    ]);
    expect(asked).to.deep.equal([0, 5, 5, 7]);
  });

  it('resets to index 0 when the index goes backwards, without a duplicate report', async () => {
    const ctl = new AbortController();
    const { fetch, asked } = scripted(
      [
        { value: 'old', index: 100 },
        { value: 'restored', index: 3 },
        { value: 'restored', index: 3 },
        { value: 'next', index: 4 },
      ],
      ctl,
    );
    const seen: string[] = [];
    await watch(fetch, (v) => void seen.push(v), { signal: ctl.signal, clock: fastClock() });
    expect(seen).to.deep.equal(['old', 'restored', 'next']);
    expect(asked).to.deep.equal([0, 100, 0, 3, 4]);
  });

  it('backs off exponentially on errors, keeps the index, and resets the backoff on success', async () => {
    const ctl = new AbortController();
    const boom = new Error('boom');
    const { fetch, asked } = scripted<string>(
      [{ value: 'a', index: 2 }, boom, boom, boom, { value: 'b', index: 3 }, boom],
      ctl,
    );
    const clock = fastClock();
    const errors: number[] = [];
    await watch(fetch, () => undefined, {
      signal: ctl.signal,
      clock,
      onError: (_err, delay) => errors.push(delay),
    });
    expect(errors).to.deep.equal([100, 200, 400, 100]);
    expect(clock.delays).to.deep.equal([100, 200, 400, 100]);
    expect(asked).to.deep.equal([0, 2, 2, 2, 2, 3, 3]);
  });

  it('caps the backoff at the maximum', () => {
    expect([0, 1, 2, 8, 9, 50].map((n) => backoffDelay(n, 100, 30_000))).to.deep.equal([
      100, 200, 400, 25_600, 30_000, 30_000,
    ]);
  });

  it('uses real small delays when given them', async () => {
    const ctl = new AbortController();
    const { fetch } = scripted<string>(
      [new Error('x'), new Error('y'), { value: 'ok', index: 1 }],
      ctl,
    );
    const seen: string[] = [];
    await watch(fetch, (v) => void seen.push(v), {
      signal: ctl.signal,
      minBackoffMs: 1,
      maxBackoffMs: 2,
    });
    expect(seen).to.deep.equal(['ok']);
  });

  it('stops when aborted during a blocking fetch', async () => {
    const ctl = new AbortController();
    let calls = 0;
    const fetch = (index: number, signal: AbortSignal) =>
      new Promise<QueryResult<number>>((resolve, reject) => {
        calls++;
        if (index === 0) return resolve({ value: 1, index: 1 });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    const done = watch(fetch, () => undefined, { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 20);
    await done;
    expect(calls).to.equal(2);
  });

  it('ends with the error when onChange throws', async () => {
    const ctl = new AbortController();
    const { fetch } = scripted([{ value: 1, index: 1 }], ctl);
    const err = await watch(
      fetch,
      () => {
        throw new Error('handler failed');
      },
      { signal: ctl.signal },
    ).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('handler failed');
  });
});
