/**
 * Registration throughput with fsync. The server fsyncs (fdatasync) every write before it
 * answers and group-commits concurrent writes into one sync, so throughput should grow with
 * the number of concurrent writers. Each concurrency level gets a fresh server and runs:
 *   - GET /v1/status/leader (no write): the HTTP stack's ceiling at that concurrency,
 *   - PUT /v1/catalog/register of a distinct service on a distinct node per request.
 * Before them, one writer appends 200 bytes + fdatasync in a loop: the disk's raw sync rate.
 *
 * BENCH_REG_DURATION_S (10)        seconds per measurement
 * BENCH_REG_CONCURRENCY (1,16,128) concurrent writers
 * BENCH_FSYNC_DURATION_S (5)       seconds of the raw fdatasync loop
 */
import type { Pool } from 'undici';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { fsyncLoop } from './lib/disk.js';
import { int, ms, table } from './lib/format.js';
import { makePool, putJson, sendOk } from './lib/http.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { startServer } from './lib/server.js';
import { summarize, type LatencySummary } from './lib/stats.js';

export interface ThroughputRow {
  what: string;
  concurrency: number;
  ops: number;
  errors: number;
  errorSamples: string[];
  perSecond: number;
  latency: LatencySummary;
}

export interface RegistrationResult {
  durationMs: number;
  fsync: ThroughputRow;
  levels: { concurrency: number; leader: ThroughputRow; register: ThroughputRow }[];
}

const WARMUP_OPS = 300;

function row(what: string, r: LoadResult): ThroughputRow {
  return {
    what,
    concurrency: r.concurrency,
    ops: r.ops,
    errors: r.errors,
    errorSamples: r.errorSamples,
    perSecond: r.rate,
    latency: summarize(r.latenciesMs),
  };
}

/** A distinct node with one distinct service, as an agent would register it. */
export function registrationBody(prefix: string, i: number): object {
  return {
    Node: `${prefix}-node-${i}`,
    Address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    NodeMeta: { rack: `r${i % 16}` },
    Service: {
      ID: `${prefix}-svc-${i}`,
      Service: `${prefix}-svc-${i}`,
      Port: 8080,
      Tags: ['bench', `shard-${i % 8}`],
      Meta: { version: '1' },
    },
  };
}

async function measureLevel(concurrency: number, durationMs: number, log: Log): Promise<RegistrationResult['levels'][number]> {
  const server = await startServer({ name: `reg-c${concurrency}` });
  const pool: Pool = makePool(server.origin, { connections: concurrency });
  try {
    const leaderOp = async (): Promise<void> => {
      await sendOk(pool, 'GET', '/v1/status/leader');
    };
    const registerOp = (prefix: string) => async (i: number): Promise<void> => {
      await putJson(pool, '/v1/catalog/register', registrationBody(prefix, i));
    };
    // Warm up JIT and sockets on both paths (the warm-up nodes stay in the catalog).
    await runLoad({ concurrency, count: WARMUP_OPS, op: leaderOp });
    await runLoad({ concurrency, count: WARMUP_OPS, op: registerOp(`warm-c${concurrency}`) });

    log(`registration: GET /v1/status/leader, ${concurrency} concurrent, ${durationMs / 1000}s`);
    const leader = row('GET /v1/status/leader', await runLoad({ concurrency, durationMs, op: leaderOp }));
    log(`registration: PUT /v1/catalog/register, ${concurrency} concurrent, ${durationMs / 1000}s`);
    const register = row('PUT /v1/catalog/register', await runLoad({ concurrency, durationMs, op: registerOp(`c${concurrency}`) }));
    log(
      `  leader ${int(leader.perSecond)}/s p99 ${ms(leader.latency.p99)} ms; ` +
        `register ${int(register.perSecond)}/s p99 ${ms(register.latency.p99)} ms, ${register.errors} errors`,
    );
    return { concurrency, leader, register };
  } finally {
    await pool.close();
    await server.stop();
  }
}

export const registration: Benchmark<RegistrationResult> = {
  name: 'registration',
  title: 'registration writes per second with fsync',
  async run(log) {
    const durationMs = envInt('BENCH_REG_DURATION_S', 10) * 1000;
    const levels = envIntList('BENCH_REG_CONCURRENCY', [1, 16, 128]);
    const fsyncMs = envInt('BENCH_FSYNC_DURATION_S', 5) * 1000;

    log(`registration: raw write+fdatasync loop, 1 writer, ${fsyncMs / 1000}s`);
    const f = fsyncLoop(fsyncMs);
    const fsync: ThroughputRow = {
      what: 'raw write(200 B) + fdatasync',
      concurrency: 1,
      ops: f.ops,
      errors: 0,
      errorSamples: [],
      perSecond: f.rate,
      latency: summarize(f.latenciesMs),
    };
    log(`  ${int(fsync.perSecond)} syncs/s, p50 ${ms(fsync.latency.p50)} ms`);

    const out: RegistrationResult['levels'] = [];
    for (const c of levels) out.push(await measureLevel(c, durationMs, log));
    return { durationMs, fsync, levels: out };
  },
  render(r) {
    const rows: ThroughputRow[] = [r.fsync];
    for (const l of r.levels) rows.push(l.leader, l.register);
    const t = table(
      [
        { title: 'Operation' },
        { title: 'Concurrency', align: 'right' },
        { title: 'Requests', align: 'right' },
        { title: 'Errors', align: 'right' },
        { title: 'Per second', align: 'right' },
        { title: 'p50 ms', align: 'right' },
        { title: 'p99 ms', align: 'right' },
        { title: 'max ms', align: 'right' },
      ],
      rows.map((x) => [
        x.what,
        String(x.concurrency),
        int(x.ops),
        int(x.errors),
        int(x.perSecond),
        ms(x.latency.p50),
        ms(x.latency.p99),
        ms(x.latency.max),
      ]),
    );
    const errors = rows.flatMap((x) => x.errorSamples.map((e) => `- ${x.what} at ${x.concurrency}: ${e}`));
    const first = r.levels[0];
    const last = r.levels[r.levels.length - 1];
    const scaling =
      first && last && first !== last
        ? `Here registration went from ${int(first.register.perSecond)}/s at ${first.concurrency} writer(s) ` +
          `to ${int(last.register.perSecond)}/s at ${last.concurrency} ` +
          `(${(last.register.perSecond / r.fsync.perSecond).toFixed(1)}x the raw sync rate), against ` +
          `${int(last.leader.perSecond)}/s for the leader read at the same concurrency. `
        : '';
    return [
      `Each concurrency level runs for ${r.durationMs / 1000} s against a fresh server; every ` +
        'register request adds a new node with one new service. Concurrency is the number of ' +
        'closed-loop clients (each waits for its answer before sending the next request) over ' +
        'keep-alive connections.',
      '',
      t,
      '',
      'Read it this way: the raw fdatasync row is what this disk gives one writer that syncs ' +
        'every record; a registration at concurrency 1 pays at least one such sync (plus the ' +
        "hop to Node's thread pool). With more writers the server group-commits (one sync per " +
        'batch), so the disk should stop being the limit and the leader row at the same ' +
        'concurrency (the HTTP ceiling, no write at all) becomes the bound. ' +
        scaling +
        'The gap between the register and leader rows is the cost of the write path: JSON ' +
        'decoding and validation, encoding the log record, waiting for the batch sync, applying.',
      ...(errors.length ? ['', 'Errors seen (first few):', '', ...errors] : []),
    ].join('\n');
  },
};
