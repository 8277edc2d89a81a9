/**
 * A closed-loop load generator: `concurrency` workers each run one operation at a time, back
 * to back, for a fixed duration or until a fixed number of operations has started. Latency is
 * recorded per successful operation; failed operations are counted, with a few messages kept.
 */
import { describe } from './errors.js';
import { now } from './time.js';

export interface LoadOptions {
  concurrency: number;
  /** Stop starting operations after this long (ms)... */
  durationMs?: number;
  /** ...or after this many operations. One of the two must be set. */
  count?: number;
  /**
   * The i-th operation (i counts from 0 across all workers); throws on failure. It may return
   * the latency to record (ms) when only part of it should count; otherwise all of it counts.
   */
  op: (i: number) => Promise<void | number>;
}

export interface LoadResult {
  concurrency: number;
  /** Operations that finished (successes + errors). */
  ops: number;
  errors: number;
  errorSamples: string[];
  /** From the first start to the last finish. */
  elapsedMs: number;
  /** Successful operations per second over elapsedMs. */
  rate: number;
  /** One entry per successful operation. */
  latenciesMs: number[];
}

const MAX_ERROR_SAMPLES = 5;

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (opts.durationMs === undefined && opts.count === undefined)
    throw new Error('runLoad: set durationMs or count');
  const latencies: number[] = [];
  const samples: string[] = [];
  let errors = 0;
  let next = 0;
  const start = now();
  const deadline =
    opts.durationMs === undefined ? Number.POSITIVE_INFINITY : start + opts.durationMs;
  const limit = opts.count ?? Number.POSITIVE_INFINITY;

  const worker = async (): Promise<void> => {
    while (next < limit && now() < deadline) {
      const i = next++;
      const t0 = now();
      try {
        const own = await opts.op(i);
        latencies.push(typeof own === 'number' ? own : now() - t0);
      } catch (err) {
        errors++;
        if (samples.length < MAX_ERROR_SAMPLES) samples.push(describe(err));
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
  const elapsedMs = now() - start;
  return {
    concurrency: opts.concurrency,
    ops: latencies.length + errors,
    errors,
    errorSamples: samples,
    elapsedMs,
    rate: (latencies.length * 1000) / elapsedMs,
    latenciesMs: latencies,
  };
}
