/**
 * Registration throughput with fsync. The server fsyncs (fdatasync) every write before it
 * answers and group-commits concurrent writes into one sync, so throughput should grow with
 * the number of concurrent writers. Each concurrency level gets a fresh server and runs:
 *   - GET /v1/status/leader (no write): the HTTP stack's ceiling at that concurrency,
 *   - PUT /v1/catalog/register of a distinct service on a distinct node per request.
 * Before them, one writer appends 200 bytes + fdatasync in a loop: the disk's raw sync rate,
 * once with blocking calls and once through node:fs/promises (the thread pool, as the server).
 *
 * BENCH_REG_DURATION_S (10)        seconds per measurement
 * BENCH_REG_CONCURRENCY (1,16,128) concurrent writers
 * BENCH_FSYNC_DURATION_S (5)       seconds of the raw fdatasync loop
 */
import type { Pool } from 'undici';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { fsyncLoop, fsyncLoopPromises, type FsyncLoopResult } from './lib/disk.js';
import { count, int, ms, table } from './lib/format.js';
import { makePool, putJson, sendOk } from './lib/http.js';
import { runLoad, type LoadOptions, type LoadResult } from './lib/load.js';
import { measureCpu, type CpuShare } from './lib/cpu.js';
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
  /** CPU of server and client during the run, % of one core (absent for the disk loops). */
  cpu?: CpuShare;
}

export interface RegistrationResult {
  durationMs: number;
  /** Blocking write + fdatasync loop: the disk's rate for one writer. */
  fsync: ThroughputRow;
  /** The same through node:fs/promises (the thread pool), as the server does it. */
  fsyncPromises: ThroughputRow;
  levels: { concurrency: number; leader: ThroughputRow; register: ThroughputRow }[];
}

const WARMUP_OPS = 300;

function row(what: string, r: LoadResult, cpu: CpuShare): ThroughputRow {
  return {
    cpu,
    what,
    concurrency: r.concurrency,
    ops: r.ops,
    errors: r.errors,
    errorSamples: r.errorSamples,
    perSecond: r.rate,
    latency: summarize(r.latenciesMs),
  };
}

function diskRow(what: string, f: FsyncLoopResult): ThroughputRow {
  return {
    what,
    concurrency: 1,
    ops: f.ops,
    errors: 0,
    errorSamples: [],
    perSecond: f.rate,
    latency: summarize(f.latenciesMs),
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

async function measureLevel(
  concurrency: number,
  durationMs: number,
  log: Log,
): Promise<RegistrationResult['levels'][number]> {
  const server = await startServer({ name: `reg-c${concurrency}` });
  const pool: Pool = makePool(server.origin, { connections: concurrency });
  try {
    const leaderOp = async (): Promise<void> => {
      await sendOk(pool, 'GET', '/v1/status/leader');
    };
    const registerOp =
      (prefix: string) =>
      async (i: number): Promise<void> => {
        await putJson(pool, '/v1/catalog/register', registrationBody(prefix, i));
      };
    // Warm up JIT and sockets on both paths (the warm-up nodes stay in the catalog).
    await runLoad({ concurrency, count: WARMUP_OPS, op: leaderOp });
    await runLoad({ concurrency, count: WARMUP_OPS, op: registerOp(`warm-c${concurrency}`) });

    const measured = async (what: string, op: LoadOptions['op']): Promise<ThroughputRow> => {
      log(`registration: ${what}, ${concurrency} concurrent, ${durationMs / 1000}s`);
      const m = await measureCpu(server.cpuMs, () => runLoad({ concurrency, durationMs, op }));
      return row(what, m.value, m.cpu);
    };
    const leader = await measured('GET /v1/status/leader', leaderOp);
    const register = await measured('PUT /v1/catalog/register', registerOp(`c${concurrency}`));
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

    log(`registration: raw write+fdatasync loops, 1 writer, ${fsyncMs / 1000}s each`);
    const fsync = diskRow('raw write(200 B) + fdatasync', fsyncLoop(fsyncMs));
    const fsyncPromises = diskRow(
      'same via fs/promises (thread pool)',
      await fsyncLoopPromises(fsyncMs),
    );
    log(
      `  ${int(fsync.perSecond)} syncs/s (p50 ${ms(fsync.latency.p50)} ms); via fs/promises ${int(fsyncPromises.perSecond)}/s`,
    );

    const out: RegistrationResult['levels'] = [];
    for (const c of levels) out.push(await measureLevel(c, durationMs, log));
    return { durationMs, fsync, fsyncPromises, levels: out };
  },
  render(r) {
    const rows: ThroughputRow[] = [r.fsync, r.fsyncPromises];
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
        { title: 'Server CPU', align: 'right' },
        { title: 'Client CPU', align: 'right' },
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
        x.cpu ? `${Math.round(x.cpu.server)}%` : '',
        x.cpu ? `${Math.round(x.cpu.client)}%` : '',
      ]),
    );
    const errors = rows.flatMap((x) =>
      x.errorSamples.map((e) => `- ${x.what} at ${x.concurrency}: ${e}`),
    );
    const first = r.levels[0];
    const last = r.levels[r.levels.length - 1];
    const scaling =
      first && last && first !== last
        ? `Here registration went from ${int(first.register.perSecond)}/s at ${count(first.concurrency, 'writer', 'writers')} ` +
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
      'Read it this way: the raw fdatasync rows are what this disk gives one writer that ' +
        'syncs every record, directly and through the thread pool as the server does it; a ' +
        'registration at concurrency 1 pays at least one such sync. With more writers the ' +
        'server group-commits (one sync per batch), so the disk should stop being the limit and the leader row at the same ' +
        'concurrency (the HTTP ceiling, no write at all) becomes the bound. ' +
        scaling +
        'The gap between the register and leader rows is the cost of the write path: JSON ' +
        'decoding and validation, encoding the log record, waiting for the batch sync, applying. ' +
        'CPU columns are % of one core over the run (100% = one core busy; the machine has ' +
        'two, shared by client and server): a server well below 100% with requests queued is ' +
        'waiting, not working (unless other processes hold the cores: see the machine figure above).',
      ...(errors.length ? ['', 'Errors seen (first few):', '', ...errors] : []),
    ].join('\n');
  },
};
