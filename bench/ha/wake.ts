/**
 * Blocking-query wake latency: a watcher holds `GET /v1/kv/<key>?index=N&wait=30s` on server X
 * (its own connection); once it has been parked for a moment, the key is written on server Y
 * (another connection). A sample is the time from just before the write is sent until the
 * watcher's answer arrives (status line and headers parsed), so it includes the write's own
 * commit (fsync, or etcd's quorum) and, with X != Y, the delivery of etcd's watch event to X.
 * The next watcher blocks on the index that answer carried.
 */
import type { Pool } from 'undici';
import { describe } from '../lib/errors.js';
import { makePool, send } from '../lib/http.js';
import { percentile } from '../lib/stats.js';
import { now, sleep } from '../lib/time.js';

export interface Spread {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface WakeRow {
  layout: string;
  watchOn: string;
  writeTo: string;
  /** Samples measured (a watcher woken by the write with the written value). */
  samples: number;
  /** Watchers that answered before the write was sent (retried; should be 0). */
  early: number;
  /** Answers without the written value or a newer index, and failed requests. */
  errors: number;
  errorSamples: string[];
  wake: Spread;
  /** The write's own round trip, as its sender saw it. */
  writeAck: Spread;
}

export interface WakeOptions {
  layout: string;
  watch: { name: string; origin: string };
  write: { name: string; origin: string };
  samples: number;
  key: string;
}

/** How long a watcher is left parked before the write is sent. */
const PARK_MS = 60;
const WAIT = '30s';
const MAX_ERRORS = 10;

export function spread(values: readonly number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
  };
}

interface Answer {
  at: number;
  status: number;
  index: number;
  value: string | undefined;
}

async function watchOnce(pool: Pool, key: string, index: number): Promise<Answer> {
  const res = await pool.request({
    method: 'GET',
    path: `/v1/kv/${key}?index=${index}&wait=${WAIT}`,
  });
  const at = now();
  const raw = res.headers['x-consul-index'];
  const next = Number(Array.isArray(raw) ? raw[0] : (raw ?? 0));
  const text = await res.body.text();
  let value: string | undefined;
  if (res.statusCode === 200) {
    const rows = JSON.parse(text) as { Value: string | null }[];
    const v = rows[0]?.Value;
    value = v == null ? undefined : Buffer.from(v, 'base64').toString();
  }
  return { at, status: res.statusCode, index: next, value };
}

/** The key's current index on the watcher's server once it holds `expected`. */
async function settledIndex(pool: Pool, key: string, expected: string): Promise<number> {
  const until = now() + 30_000;
  for (;;) {
    const a = await watchOnce(pool, key, 0);
    if (a.status === 200 && a.value === expected) return a.index;
    if (now() > until)
      throw new Error(`${key} did not reach "${expected}" on the watcher's server`);
    await sleep(20);
  }
}

export async function measureWake(opts: WakeOptions): Promise<WakeRow> {
  const watchPool = makePool(opts.watch.origin, { connections: 1 });
  const writePool = makePool(opts.write.origin, { connections: 1 });
  const wakes: number[] = [];
  const acks: number[] = [];
  const errorSamples: string[] = [];
  let early = 0;
  let errors = 0;
  const fail = (why: string): void => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(why);
  };
  try {
    const first = await send(writePool, 'PUT', `/v1/kv/${opts.key}`, 'v0');
    if (first.status !== 200)
      throw new Error(`PUT ${opts.key}: HTTP ${first.status} ${first.body}`);
    let index = await settledIndex(watchPool, opts.key, 'v0');
    for (let k = 1; wakes.length < opts.samples; k++) {
      if (errors >= MAX_ERRORS)
        throw new Error(`wake ${opts.layout}: ${errors} errors: ${errorSamples.join('; ')}`);
      const expected = `v${k}`;
      let answer: Answer | undefined;
      let failure: string | undefined;
      const watcher = watchOnce(watchPool, opts.key, index).then(
        (a) => void (answer = a),
        (err: unknown) => void (failure = describe(err)),
      );
      await sleep(PARK_MS);
      if (answer || failure) {
        // Answered before any write: not parked (or the index moved); start this sample over.
        early++;
        await watcher;
        if (failure) fail(failure);
        else if (answer) index = answer.index;
        continue;
      }
      const t0 = now();
      const put = await send(writePool, 'PUT', `/v1/kv/${opts.key}`, expected);
      const ack = now() - t0;
      await watcher;
      if (put.status !== 200) {
        fail(`PUT answered ${put.status} ${put.body.slice(0, 120)}`);
        index = await settledIndex(watchPool, opts.key, expected).catch(() => index);
        continue;
      }
      if (failure) {
        fail(failure);
        index = await settledIndex(watchPool, opts.key, expected);
        continue;
      }
      const a = answer!;
      if (a.status !== 200 || a.value !== expected || a.index <= index) {
        fail(
          `watcher answered ${a.status}, value ${a.value ?? '(none)'}, index ${a.index} (was ${index})`,
        );
        index = await settledIndex(watchPool, opts.key, expected);
        continue;
      }
      wakes.push(a.at - t0);
      acks.push(ack);
      index = a.index;
    }
    return {
      layout: opts.layout,
      watchOn: opts.watch.name,
      writeTo: opts.write.name,
      samples: wakes.length,
      early,
      errors,
      errorSamples,
      wake: spread(wakes),
      writeAck: spread(acks),
    };
  } finally {
    await Promise.all([watchPool.close(), writePool.close()]);
  }
}
