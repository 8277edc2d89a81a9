/**
 * KV write throughput: `writers` closed-loop writers (each sends its next PUT when the last one
 * is answered) put distinct keys with ~100-byte values for a fixed time. Writer w sends every
 * request to origin w mod N, so with several servers the writers are spread round-robin over
 * them and each server answers the writes it received.
 */
import type { Pool } from 'undici';
import { describe } from '../lib/errors.js';
import { makePool, send } from '../lib/http.js';
import { summarize, type LatencySummary } from '../lib/stats.js';
import { now } from '../lib/time.js';
import { measureHaCpu, type CpuSources, type HaCpu } from './cpu.js';

export interface WriteRow {
  layout: string;
  writers: number;
  /** Trellis servers the writers were spread over. */
  servers: number;
  ops: number;
  errors: number;
  errorSamples: string[];
  perSecond: number;
  latency: LatencySummary;
  cpu: HaCpu;
}

export interface WriteOptions {
  layout: string;
  origins: readonly string[];
  writers: number;
  durationMs: number;
  /** Distinguishes the keys of one measurement from every other's. */
  keyPrefix: string;
  cpu: CpuSources;
}

const WARMUP_OPS = 200;
const MAX_ERROR_SAMPLES = 5;
/** About 100 bytes, the same for every write. */
const VALUE = `${'trellis-ha-bench-'.repeat(6)}0123456789`.slice(0, 100);

interface Tally {
  latencies: number[];
  errors: number;
  samples: string[];
}

async function putOnce(pool: Pool, path: string): Promise<void> {
  const r = await send(pool, 'PUT', path, VALUE);
  if (r.status !== 200 || r.body.trim() !== 'true')
    throw new Error(`PUT answered ${r.status} ${r.body.slice(0, 160)}`);
}

/** Runs the writers until `deadline` (monotonic ms) or until `limit` writes have started. */
async function drive(
  pools: readonly Pool[],
  writers: number,
  prefix: string,
  deadline: number,
  limit: number,
): Promise<Tally> {
  const t: Tally = { latencies: [], errors: 0, samples: [] };
  let started = 0;
  const writer = async (w: number): Promise<void> => {
    const pool = pools[w % pools.length]!;
    for (let n = 0; started < limit && now() < deadline; n++) {
      started++;
      const t0 = now();
      try {
        await putOnce(pool, `/v1/kv/${prefix}/${w}/${n}`);
        t.latencies.push(now() - t0);
      } catch (err) {
        t.errors++;
        if (t.samples.length < MAX_ERROR_SAMPLES) t.samples.push(describe(err));
      }
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  return t;
}

export async function measureWrites(opts: WriteOptions): Promise<WriteRow> {
  const perServer = Math.ceil(opts.writers / opts.origins.length);
  const pools = opts.origins.map((o) => makePool(o, { connections: perServer }));
  try {
    // Sockets, JIT and the servers' first writes, not measured.
    await drive(
      pools,
      opts.writers,
      `${opts.keyPrefix}-warm`,
      Number.POSITIVE_INFINITY,
      WARMUP_OPS,
    );
    const t0 = now();
    const { value: tally, cpu } = await measureHaCpu(opts.cpu, () =>
      drive(pools, opts.writers, opts.keyPrefix, t0 + opts.durationMs, Number.POSITIVE_INFINITY),
    );
    const elapsed = now() - t0;
    return {
      layout: opts.layout,
      writers: opts.writers,
      servers: opts.origins.length,
      ops: tally.latencies.length + tally.errors,
      errors: tally.errors,
      errorSamples: tally.samples,
      perSecond: (tally.latencies.length * 1000) / elapsed,
      latency: summarize(tally.latencies),
      cpu,
    };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}
