/**
 * The data plane, side by side on this machine: what a proxy pair adds to a request, what it
 * costs in CPU, how far it goes when pushed, and what each local service costs the agent.
 *
 *   1. An upstream app (its own process): HTTP/1.1, answers every POST with a body of
 *      BENCH_DATAPLANE_BODY_BYTES.
 *   2. Paths to it, one after the other (bench/dataplane/pairs.ts): direct; Trellis
 *      (web's ServiceProxy -> mTLS -> api's ServiceProxy, each in its own process) with
 *      protocol http and with protocol tcp; and Debian's HAProxy as the same mTLS pair
 *      (`mode http`, `nbthread 1` each, so one core per proxy as Node's single thread), skipped
 *      with a note when haproxy is not installed.
 *   3. All paths are started, then measured in BENCH_DATAPLANE_ROUNDS interleaved rounds (every
 *      path once per round, in order), so a stall of this shared machine lands in one round of
 *      one path instead of deciding a row. Per path and round, a load generator (its own
 *      process, bench/dataplane/loadgen.ts) runs
 *      - an open loop at BENCH_DATAPLANE_RATE req/s over BENCH_DATAPLANE_CONNECTIONS keep-alive
 *        connections: each request is due at a fixed time and its latency runs from then, so
 *        queueing behind a stall is counted. p50/p90/p99/max, the added latency over direct,
 *        and each proxy's CPU time (from /proc) per 1,000 requests;
 *      - a closed loop with BENCH_DATAPLANE_CONCURRENCY requests in flight: requests/s.
 *      A row's percentiles and rates are the median over its rounds, its max the highest, its
 *      CPU the total over all rounds' windows. Before each measurement the app and the path's
 *      proxies are left to go idle (up to 10 s), so a path that fell behind does not pass its
 *      backlog on to the next.
 *   4. Agent memory: a real `trellis server` and, per count of 0 and BENCH_DATAPLANE_SERVICES,
 *      a fresh `trellis agent` with that many local services, each with a sidecar; VmRSS once
 *      every sidecar listens and the agent settled, and the cost per extra service.
 *
 * BENCH_DATAPLANE_RATE (1000)              open-loop requests per second
 * BENCH_DATAPLANE_ROUNDS (3)               interleaved rounds over all paths
 * BENCH_DATAPLANE_SECONDS (12)             measured seconds at that rate, per path (all rounds)
 * BENCH_DATAPLANE_WARMUP_SECONDS (2)       unmeasured seconds before each measurement
 * BENCH_DATAPLANE_BODY_BYTES (1024)        request and response body size
 * BENCH_DATAPLANE_CONNECTIONS (32)         keep-alive connections of the open-loop generator
 * BENCH_DATAPLANE_CONCURRENCY (32)         requests in flight at saturation
 * BENCH_DATAPLANE_SATURATION_SECONDS (6)   measured seconds at saturation, per path (all rounds)
 * BENCH_DATAPLANE_SERVICES (1,10,50)       local services per agent (0 is always measured too)
 * BENCH_DATAPLANE_SETTLE_SECONDS (3)       wait after the last sidecar listens, before VmRSS
 * BENCH_DATAPLANE_PAIRS (all)              paths to run, by id: direct,trellis-http,trellis-http-h1,trellis-tcp,haproxy
 * BENCH_HAPROXY (haproxy on PATH)          the haproxy binary
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { describe } from './lib/errors.js';
import { ms } from './lib/format.js';
import { now, sleep } from './lib/time.js';
import { testCa } from '../test/helpers/mesh-ca.js';
import { measureAgentRss } from './dataplane/agent-rss.js';
import { ProcessGroup, type Child } from './dataplane/children.js';
import {
  haproxyVersion,
  PAIRS,
  type PairContext,
  type PairSpec,
  type RunningPair,
} from './dataplane/pairs.js';
import { renderDataplane } from './dataplane/render.js';
import {
  READY_MARK,
  RESULT_MARK,
  type DataplaneResult,
  type LoadSettings,
  type LoadJob,
  type LoadReport,
  type PairResult,
  type Percentiles,
} from './dataplane/types.js';

const APP = fileURLToPath(new URL('./dataplane/app-server.js', import.meta.url));
const LOADGEN = fileURLToPath(new URL('./dataplane/loadgen.js', import.meta.url));

interface Settings extends LoadSettings {
  services: number[];
  settleSeconds: number;
  pairs: readonly PairSpec[];
}

function settings(): Settings {
  const ids = (process.env.BENCH_DATAPLANE_PAIRS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = ids.filter((id) => !PAIRS.some((p) => p.id === id));
  if (unknown.length)
    throw new Error(
      `BENCH_DATAPLANE_PAIRS: unknown ${unknown.join(', ')}; known: ${PAIRS.map((p) => p.id).join(', ')}`,
    );
  return {
    rate: envInt('BENCH_DATAPLANE_RATE', 1000),
    rounds: envInt('BENCH_DATAPLANE_ROUNDS', 3),
    seconds: envInt('BENCH_DATAPLANE_SECONDS', 12),
    warmupSeconds: envInt('BENCH_DATAPLANE_WARMUP_SECONDS', 2),
    bodyBytes: envInt('BENCH_DATAPLANE_BODY_BYTES', 1024),
    connections: envInt('BENCH_DATAPLANE_CONNECTIONS', 32),
    concurrency: envInt('BENCH_DATAPLANE_CONCURRENCY', 32),
    saturationSeconds: envInt('BENCH_DATAPLANE_SATURATION_SECONDS', 6),
    services: envIntList('BENCH_DATAPLANE_SERVICES', [1, 10, 50]),
    settleSeconds: envInt('BENCH_DATAPLANE_SETTLE_SECONDS', 3),
    pairs: ids.length ? PAIRS.filter((p) => ids.includes(p.id)) : PAIRS,
  };
}

/** Runs the load generator once (its own process) and returns its report. */
async function generate(group: ProcessGroup, job: LoadJob): Promise<LoadReport> {
  const child = group.node(`loadgen-${job.mode}`, LOADGEN, [JSON.stringify(job)]);
  try {
    const timeout = job.warmupMs + job.durationMs + 60_000;
    // JSON has no NaN (an empty sample's percentiles): it comes back as null.
    return JSON.parse(await child.waitLine(RESULT_MARK, timeout), (_k, v: unknown) =>
      v === null ? Number.NaN : v,
    ) as LoadReport;
  } finally {
    await group.stop(child);
  }
}

/** A path while the rounds run: its row, its processes, and what each round measured. */
interface LivePair {
  spec: PairSpec;
  row: PairResult;
  running?: RunningPair;
  fixed: LoadReport[];
  saturated: LoadReport[];
}

async function startPair(spec: PairSpec, ctx: PairContext, log: Log): Promise<LivePair> {
  const live: LivePair = {
    spec,
    row: {
      id: spec.id,
      label: spec.label,
      trellis: spec.trellis,
      reference: spec.reference ?? false,
      proxies: false,
      rounds: [],
    },
    fixed: [],
    saturated: [],
  };
  const why = spec.unavailable();
  if (why) {
    log(`dataplane: ${spec.id}: skipped (${why})`);
    live.row.skipped = why;
    return live;
  }
  try {
    live.running = await spec.start(ctx);
    live.row.proxies = live.running.client !== undefined || live.running.server !== undefined;
  } catch (err) {
    log(`dataplane: ${spec.id}: failed to start: ${describe(err)}`);
    live.row.failed = describe(err).slice(0, 500);
  }
  return live;
}

const QUIET_MS = 10_000;

/**
 * Waits (at most QUIET_MS) until the processes are idle (under 5% of a core over 250 ms), so a
 * path that fell behind does not carry its backlog into the next measurement.
 */
async function quiesce(children: Child[]): Promise<void> {
  const until = now() + QUIET_MS;
  while (now() < until) {
    const alive = children.filter((c) => c.running());
    const before = alive.map((c) => c.cpuMs());
    const t0 = now();
    await sleep(250);
    const busy = alive.some((c, i) => ((c.cpuMs() - before[i]!) / (now() - t0)) * 100 > 5);
    if (!busy) return;
  }
}

/** One round of one path: the fixed rate, then saturation. */
async function measureRound(
  live: LivePair,
  round: number,
  ctx: PairContext,
  app: Child,
  s: Settings,
  log: Log,
): Promise<void> {
  const running = live.running!;
  const id = `${live.spec.id} (round ${round}/${s.rounds})`;
  const cpuPids: Record<string, number> = { app: app.pid };
  if (running.client) cpuPids.client = running.client.pid;
  if (running.server) cpuPids.server = running.server.pid;
  const base = {
    origin: `http://127.0.0.1:${running.port}`,
    bodyBytes: s.bodyBytes,
    cpuPids,
    warmupMs: s.warmupSeconds * 1000,
  };
  const ours = [
    app,
    ...(running.client ? [running.client] : []),
    ...(running.server ? [running.server] : []),
  ];
  await quiesce(ours);
  const fixed = await generate(ctx.group, {
    ...base,
    mode: 'open',
    rate: s.rate,
    concurrency: 0,
    connections: s.connections,
    durationMs: (s.seconds * 1000) / s.rounds,
  });
  live.fixed.push(fixed);
  await quiesce(ours);
  const saturated = await generate(ctx.group, {
    ...base,
    mode: 'closed',
    rate: 0,
    concurrency: s.concurrency,
    connections: s.concurrency,
    durationMs: (s.saturationSeconds * 1000) / s.rounds,
  });
  live.saturated.push(saturated);
  await quiesce(ours);
  log(
    `dataplane: ${id}: ${s.rate} req/s: p50 ${ms(fixed.latency.p50)} ms, p99 ` +
      `${ms(fixed.latency.p99)} ms, ${fixed.errors} errors; saturated: ` +
      `${Math.round(saturated.rate)} req/s, ${saturated.errors} errors`,
  );
  const gone = [running.client, running.server].filter((c) => c && !c.running());
  if (gone.length) throw new Error(`${gone.map((c) => c!.name).join(', ')} exited during the run`);
}

function median(values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

function combinePercentiles(list: Percentiles[]): Percentiles {
  const count = list.reduce((a, p) => a + p.count, 0);
  return {
    count,
    p50: median(list.map((p) => p.p50)),
    p90: median(list.map((p) => p.p90)),
    p99: median(list.map((p) => p.p99)),
    max: Math.max(...list.map((p) => p.max)),
    mean: count ? list.reduce((a, p) => a + p.mean * p.count, 0) / count : Number.NaN,
  };
}

/** Rounds into one row: medians of percentiles and rates, sums of counts, windows and CPU. */
export function combineRounds(rounds: LoadReport[]): LoadReport | undefined {
  if (rounds.length === 0) return undefined;
  const sum = (f: (r: LoadReport) => number): number => rounds.reduce((a, r) => a + f(r), 0);
  const cpuMs: Record<string, number> = {};
  for (const r of rounds)
    for (const [k, v] of Object.entries(r.cpuMs)) cpuMs[k] = (cpuMs[k] ?? 0) + v;
  const lags = rounds.flatMap((r) => (r.sendLag ? [r.sendLag] : []));
  return {
    mode: rounds[0]!.mode,
    requests: sum((r) => r.requests),
    ok: sum((r) => r.ok),
    errors: sum((r) => r.errors),
    unanswered: sum((r) => r.unanswered),
    errorSamples: [...new Set(rounds.flatMap((r) => r.errorSamples))].slice(0, 5),
    windowMs: sum((r) => r.windowMs),
    rate: median(rounds.map((r) => r.rate)),
    latency: combinePercentiles(rounds.map((r) => r.latency)),
    ...(lags.length ? { sendLag: combinePercentiles(lags) } : {}),
    cpuMs,
  };
}

export const dataplane: Benchmark<DataplaneResult> = {
  name: 'dataplane',
  title: 'proxy latency, CPU and throughput (Trellis vs HAProxy), agent memory per service',
  async run(log) {
    const s = settings();
    const started = now();
    const group = new ProcessGroup();
    try {
      const dir = group.tempDir('dataplane');
      const ca = testCa();
      const certs = { rootPem: ca.rootPem, web: ca.leaf('web'), api: ca.leaf('api') };
      const app = group.node('app', APP, [String(s.bodyBytes)]);
      const { port: appPort } = JSON.parse(await app.waitLine(READY_MARK, 10_000)) as {
        port: number;
      };
      const ctx: PairContext = { group, dir, appPort, certs };
      const live: LivePair[] = [];
      for (const spec of s.pairs) {
        log(`dataplane: ${spec.id}: starting`);
        live.push(await startPair(spec, ctx, log));
      }
      for (let round = 1; round <= s.rounds; round++) {
        for (const l of live) {
          if (!l.running || l.row.failed) continue;
          try {
            await measureRound(l, round, ctx, app, s, log);
          } catch (err) {
            log(`dataplane: ${l.spec.id}: failed: ${describe(err)}`);
            l.row.failed = describe(err).slice(0, 500);
            await l.running.stop();
          }
        }
      }
      for (const l of live) if (l.running && !l.row.failed) await l.running.stop();
      await group.stop(app);
      const pairs: PairResult[] = live.map((l) => {
        const fixed = combineRounds(l.fixed);
        const saturated = combineRounds(l.saturated);
        return {
          ...l.row,
          rounds: l.fixed.map((f, i) => ({
            p99: f.latency.p99,
            saturatedRate: l.saturated[i]?.rate ?? Number.NaN,
          })),
          ...(fixed ? { fixed } : {}),
          ...(saturated ? { saturated } : {}),
        };
      });

      const counts = [0, ...s.services.filter((n) => n > 0)];
      const agent: DataplaneResult['agent'] = { rows: [], settleMs: s.settleSeconds * 1000 };
      try {
        agent.rows = await measureAgentRss(counts, agent.settleMs, group, log);
      } catch (err) {
        log(`dataplane: agent memory failed: ${describe(err)}`);
        agent.error = describe(err).slice(0, 500);
      }
      return {
        rate: s.rate,
        rounds: s.rounds,
        seconds: s.seconds,
        warmupSeconds: s.warmupSeconds,
        bodyBytes: s.bodyBytes,
        connections: s.connections,
        concurrency: s.concurrency,
        saturationSeconds: s.saturationSeconds,
        cores: availableParallelism(),
        haproxyVersion: s.pairs.some((p) => p.id === 'haproxy') ? (haproxyVersion() ?? null) : null,
        pairs,
        agent,
        elapsedMs: now() - started,
      };
    } finally {
      await group.stopAll();
    }
  },
  render: renderDataplane,
};
