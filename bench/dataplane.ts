/**
 * The data plane, side by side on this machine, with a load generator and an app that are not
 * the bottleneck (issue 12): what a proxy pair carries when pushed, what it adds to a request,
 * what it costs in CPU, and what the agent costs with no services.
 *
 * Needs Debian's tools (a row whose tool is missing is skipped with a note, never a crash):
 *   apt-get install wrk nginx-light haproxy nghttp2-client
 *
 *   1. App: nginx-light (bench/dataplane/nginx.ts), one process (`master_process off`,
 *      `worker_processes 1`), its own config, pid file and logs in a temp dir, GET / answers a
 *      fixed body of BENCH_DATAPLANE_BODY_BYTES; an HTTP/1.1 listener and an h2c listener.
 *   2. Rows (bench/dataplane/pairs.ts): nginx direct; HAProxy as one process holding both sides
 *      of an mTLS pair (`mode http`, `http-reuse always`) with `nbthread 1` and `nbthread 2`;
 *      Trellis as one process holding both ServiceProxies (web's upstream listener -> mTLS ->
 *      api's inbound -> nginx, as a dev agent) with protocol tcp and protocol http; a hook row
 *      for Trellis with proxy workers (skipped until they exist); and HTTP/2 rows: nginx direct
 *      over h2c, the HAProxy pair with h2 on both hops, the Trellis pair with protocol http2.
 *   3. Figures, per HTTP/1.1 row and round:
 *      - saturated req/s: wrk, keep-alive, BENCH_DATAPLANE_SATURATION_CONNECTIONS (16)
 *        connections, BENCH_DATAPLANE_WRK_THREADS (1) thread: one thread leaves the other core
 *        to the app and the proxies, and its CPU (reported) shows it is below saturation on
 *        every proxied row;
 *      - latency at BENCH_DATAPLANE_LATENCY_CONNECTIONS (2) connections: wrk --latency, p50,
 *        p90, p99;
 *      - latency at BENCH_DATAPLANE_RATE (1000) req/s: the Node open-loop generator
 *        (bench/dataplane/loadgen.ts; wrk cannot hold a fixed rate), p50/p99 and the added
 *        latency over direct, with its own CPU beside it.
 *      HTTP/2 rows: saturated req/s from h2load (prior-knowledge h2c, one thread,
 *      BENCH_DATAPLANE_SATURATION_CONNECTIONS connections × BENCH_DATAPLANE_H2_STREAMS streams).
 *      With every figure, the CPU time (utime + stime from /proc/PID/stat) of the generator,
 *      nginx and each proxy process over a window inside the run, and from it CPU seconds per
 *      1,000 requests per proxy (a process holding both proxies of a pair is divided by two).
 *   4. All rows are started first, then measured in BENCH_DATAPLANE_ROUNDS interleaved rounds
 *      (every row once per round), so a stall of this shared machine lands in one round of one
 *      row; a row's rates and percentiles are the medians over its rounds, its CPU the total.
 *      Before each row's round its processes are left to go idle (up to 10 s).
 *   5. Agent memory (bench/dataplane/agent-rss.ts): a real `trellis server` and, per count of 0
 *      and BENCH_DATAPLANE_SERVICES, a fresh `trellis agent`; VmRSS once it settled.
 *   6. docs/benchmarks.md gets the tables and the goals table of issue 12 (measured, floor,
 *      goal, met?), with a sentence per table on whether the generator or the app was saturated.
 *
 * With the defaults a run takes about 12-15 minutes on 2 cores (per round: about 40 s per
 * HTTP/1.1 row, 15 s per HTTP/2 row; then the agents). BENCH_DATAPLANE_QUICK=1 takes about a
 * minute and only shows that every row works: do not publish its figures.
 *
 * BENCH_DATAPLANE_QUICK (unset)            1: smoke run (1 round, 2 s per figure, 1 s warm-up,
 *                                          services 1); explicit variables below still win
 * BENCH_DATAPLANE_ROUNDS (3)               interleaved rounds over all rows
 * BENCH_DATAPLANE_SECONDS (10)             seconds per figure per round
 * BENCH_DATAPLANE_WARMUP_SECONDS (2)       unmeasured load before each row's round
 * BENCH_DATAPLANE_BODY_BYTES (1024)        the app's answer body
 * BENCH_DATAPLANE_RATE (1000)              open-loop requests per second
 * BENCH_DATAPLANE_CONNECTIONS (32)         keep-alive connections of the open loop
 * BENCH_DATAPLANE_SATURATION_CONNECTIONS (16)  wrk/h2load connections at saturation
 * BENCH_DATAPLANE_PROFILE (1)                   0: skip the CPU profile of the HTTP/1.1 pair
 * BENCH_DATAPLANE_LATENCY_CONNECTIONS (2)  wrk connections of the latency figure
 * BENCH_DATAPLANE_WRK_THREADS (1)          wrk -t
 * BENCH_DATAPLANE_H2_STREAMS (10)          h2load -m
 * BENCH_DATAPLANE_SERVICES (1,10,50)       local services per agent (0 is always measured too)
 * BENCH_DATAPLANE_SETTLE_SECONDS (3)       wait after the last sidecar listens, before VmRSS
 * BENCH_DATAPLANE_PAIRS (all)              rows to run, by id (see pairs.ts)
 * BENCH_DATAPLANE_UPSTREAM_HTTP (unset)    h2|http1: ServiceProxy upstreamHttp for Trellis rows
 * BENCH_DATAPLANE_PROXY_WORKERS (unset)    N: enables the proxy-workers row (hook)
 * BENCH_DATAPLANE_BEFORE_DIST (unset)      dist/ of an earlier build: its HTTP/2 pair is a row
 *                                          of this run and the HTTP/2 floor's baseline
 * BENCH_DATAPLANE_BEFORE_LABEL (unset)     what to call that build in the tables
 * BENCH_DATAPLANE_H2_BASELINE (unset)      req/s of the HTTP/2 pair before M6 (another run)
 * BENCH_DATAPLANE_RSS_BASELINE_MIB (99)    agent RSS with no services before M6 (another run)
 * BENCH_DATAPLANE_RSS_BEFORE_DIST (unset)  dist/ of an earlier build: its agent's RSS with no
 *                                          services, measured in this run, is the baseline
 * BENCH_DATAPLANE_RSS_BEFORE_LABEL (unset) what to call that build
 * BENCH_WRK, BENCH_H2LOAD, BENCH_NGINX, BENCH_HAPROXY   binaries (default: PATH, sbin)
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { describe } from './lib/errors.js';
import { int, ms } from './lib/format.js';
import { processCpuMs } from './lib/proc.js';
import { now, sleep } from './lib/time.js';
import { testCa } from '../test/helpers/mesh-ca.js';
import { measureAgentRss } from './dataplane/agent-rss.js';
import { ProcessGroup } from './dataplane/children.js';
import { startApp, type RunningApp } from './dataplane/nginx.js';
import { PAIRS, type PairContext, type PairSpec, type RunningPair } from './dataplane/pairs.js';
import { combineRounds } from './dataplane/combine.js';
import { probePath } from './dataplane/probe.js';
import { profileHttpPair } from './dataplane/profile.js';
import { renderDataplane } from './dataplane/render.js';
import { runH2load, runWrk, toolVersions } from './dataplane/tools.js';
import {
  APP,
  RESULT_MARK,
  type DataplaneResult,
  type FigureKind,
  type LoadJob,
  type LoadReport,
  type LoadSettings,
  type Measurement,
  type PairResult,
} from './dataplane/types.js';

const LOADGEN = fileURLToPath(new URL('./dataplane/loadgen.js', import.meta.url));

interface Settings extends LoadSettings {
  services: number[];
  settleSeconds: number;
  pairs: readonly PairSpec[];
  upstreamHttp: 'h2' | 'http1' | undefined;
  h2Baseline: number | undefined;
  rssBaselineMib: number;
  /** An earlier build whose agent RSS is measured in the same run (the floor's baseline). */
  rssBefore: { dist: string; label: string } | undefined;
  /** Profile the HTTP/1.1 pair after the rounds (BENCH_DATAPLANE_PROFILE). */
  profile: boolean;
}

function settings(): Settings {
  const quick = process.env.BENCH_DATAPLANE_QUICK === '1';
  const ids = (process.env.BENCH_DATAPLANE_PAIRS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = ids.filter((id) => !PAIRS.some((p) => p.id === id));
  if (unknown.length)
    throw new Error(
      `BENCH_DATAPLANE_PAIRS: unknown ${unknown.join(', ')}; known: ${PAIRS.map((p) => p.id).join(', ')}`,
    );
  const up = process.env.BENCH_DATAPLANE_UPSTREAM_HTTP?.trim() || undefined;
  if (up !== undefined && up !== 'h2' && up !== 'http1')
    throw new Error(`BENCH_DATAPLANE_UPSTREAM_HTTP: "${up}" is not h2 or http1`);
  const h2Base = process.env.BENCH_DATAPLANE_H2_BASELINE?.trim();
  return {
    quick,
    rounds: envInt('BENCH_DATAPLANE_ROUNDS', quick ? 1 : 3),
    seconds: envInt('BENCH_DATAPLANE_SECONDS', quick ? 2 : 10),
    warmupSeconds: envInt('BENCH_DATAPLANE_WARMUP_SECONDS', quick ? 1 : 2),
    bodyBytes: envInt('BENCH_DATAPLANE_BODY_BYTES', 1024),
    rate: envInt('BENCH_DATAPLANE_RATE', 1000),
    connections: envInt('BENCH_DATAPLANE_CONNECTIONS', 32),
    saturationConnections: envInt('BENCH_DATAPLANE_SATURATION_CONNECTIONS', 16),
    profile: process.env.BENCH_DATAPLANE_PROFILE !== '0',
    latencyConnections: envInt('BENCH_DATAPLANE_LATENCY_CONNECTIONS', 2),
    wrkThreads: envInt('BENCH_DATAPLANE_WRK_THREADS', 1),
    h2Streams: envInt('BENCH_DATAPLANE_H2_STREAMS', 10),
    services: envIntList('BENCH_DATAPLANE_SERVICES', quick ? [1] : [1, 10, 50]),
    settleSeconds: envInt('BENCH_DATAPLANE_SETTLE_SECONDS', quick ? 1 : 3),
    pairs: ids.length ? PAIRS.filter((p) => ids.includes(p.id)) : PAIRS,
    upstreamHttp: up,
    h2Baseline: h2Base ? envInt('BENCH_DATAPLANE_H2_BASELINE', 1) : undefined,
    rssBaselineMib: envInt('BENCH_DATAPLANE_RSS_BASELINE_MIB', 99),
    rssBefore: process.env.BENCH_DATAPLANE_RSS_BEFORE_DIST?.trim()
      ? {
          dist: process.env.BENCH_DATAPLANE_RSS_BEFORE_DIST.trim(),
          label: process.env.BENCH_DATAPLANE_RSS_BEFORE_LABEL?.trim() || 'an earlier build',
        }
      : undefined,
  };
}

/** Runs the Node open-loop generator once (its own process) and returns its figures. */
async function openLoop(group: ProcessGroup, job: LoadJob): Promise<Measurement> {
  const child = group.node('loadgen', LOADGEN, [JSON.stringify(job)]);
  try {
    const timeout = job.warmupMs + job.durationMs + 60_000;
    // JSON has no NaN (an empty sample's percentiles): it comes back as null.
    const r = JSON.parse(await child.waitLine(RESULT_MARK, timeout), (_k, v: unknown) =>
      v === null ? Number.NaN : v,
    ) as LoadReport;
    return {
      tool: 'loadgen',
      rate: r.rate,
      requests: r.requests,
      errors: r.errors,
      errorNotes: r.errorSamples,
      latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
      windowMs: r.windowMs,
      windowRequests: r.requests - r.unanswered,
      cpuMs: r.cpuMs,
      sendLag: { p50: r.sendLag.p50, p99: r.sendLag.p99, max: r.sendLag.max },
    };
  } finally {
    await group.stop(child);
  }
}

/** A row while the rounds run: its result, its processes, and what each round measured. */
interface LiveRow {
  spec: PairSpec;
  row: PairResult;
  running?: RunningPair;
  perRound: Partial<Record<FigureKind, Measurement>>[];
}

async function startRow(
  spec: PairSpec,
  ctx: PairContext,
  bodyBytes: number,
  log: Log,
): Promise<LiveRow> {
  const live: LiveRow = {
    spec,
    row: {
      id: spec.id,
      label: spec.label,
      http: spec.http,
      trellis: spec.trellis,
      proxies: spec.proxies,
      figures: {},
      rounds: [],
    },
    perRound: [],
  };
  const why = spec.unavailable({ app: ctx.app });
  if (why) {
    log(`dataplane: ${spec.id}: skipped (${why})`);
    live.row.skipped = why;
    return live;
  }
  try {
    live.running = await spec.start(ctx);
    await probePath(live.running.port, spec.http, bodyBytes);
  } catch (err) {
    log(`dataplane: ${spec.id}: failed to start: ${describe(err)}`);
    live.row.failed = describe(err).slice(0, 500);
    await live.running?.stop();
    live.running = undefined;
  }
  return live;
}

const QUIET_MS = 10_000;

/**
 * Waits (at most QUIET_MS) until the processes are idle (under 5% of a core over 250 ms), so a
 * row that fell behind does not carry its backlog into the next measurement.
 */
async function quiesce(pids: number[]): Promise<void> {
  const read = (pid: number): number => {
    try {
      return processCpuMs(pid);
    } catch {
      return 0;
    }
  };
  const until = now() + QUIET_MS;
  while (now() < until) {
    const before = pids.map(read);
    const t0 = now();
    await sleep(250);
    const busy = pids.some((p, i) => ((read(p) - before[i]!) / (now() - t0)) * 100 > 5);
    if (!busy) return;
  }
}

/** One round of one row: warm-up, then every figure of its kind. */
async function measureRound(
  live: LiveRow,
  round: number,
  ctx: PairContext,
  s: Settings,
  log: Log,
): Promise<void> {
  const running = live.running!;
  const pids = { [APP]: ctx.app.child.pid, ...running.cpuPids() };
  const url = `http://127.0.0.1:${running.port}/`;
  const got: Partial<Record<FigureKind, Measurement>> = {};
  await quiesce(Object.values(pids));
  const saturate = (seconds: number): Promise<Measurement> =>
    live.spec.http === 'h1'
      ? runWrk(ctx.group, {
          url,
          connections: s.saturationConnections,
          threads: s.wrkThreads,
          seconds,
          latency: false,
          pids,
        })
      : runH2load(ctx.group, {
          url,
          connections: s.saturationConnections,
          streams: s.h2Streams,
          seconds,
          pids,
        });
  if (s.warmupSeconds > 0) await saturate(s.warmupSeconds);
  got.saturated = await saturate(s.seconds);
  if (live.spec.http === 'h1') {
    got.latency2 = await runWrk(ctx.group, {
      url,
      connections: s.latencyConnections,
      threads: 1,
      seconds: s.seconds,
      latency: true,
      pids,
    });
    await quiesce(Object.values(pids));
    got.fixed = await openLoop(ctx.group, {
      origin: `http://127.0.0.1:${running.port}`,
      rate: s.rate,
      connections: s.connections,
      warmupMs: s.warmupSeconds * 1000,
      durationMs: s.seconds * 1000,
      bodyBytes: 0,
      expectBytes: s.bodyBytes,
      cpuPids: pids,
    });
  }
  live.perRound.push(got);
  const parts = [`saturated ${int(got.saturated.rate)} req/s (${got.saturated.errors} errors)`];
  if (got.latency2?.latency)
    parts.push(
      `${s.latencyConnections} conns p50 ${ms(got.latency2.latency.p50)} / p99 ${ms(got.latency2.latency.p99)} ms`,
    );
  if (got.fixed?.latency)
    parts.push(
      `${s.rate} req/s p50 ${ms(got.fixed.latency.p50)} / p99 ${ms(got.fixed.latency.p99)} ms (${got.fixed.errors} errors)`,
    );
  log(`dataplane: ${live.spec.id} (round ${round}/${s.rounds}): ${parts.join('; ')}`);
  if (!running.alive()) throw new Error('a proxy process exited during the run');
  if (!ctx.app.child.running())
    throw new Error(`the app exited during the run:\n${ctx.app.child.output().slice(-1000)}`);
}

function finishRow(live: LiveRow): PairResult {
  const figures: PairResult['figures'] = {};
  for (const kind of ['saturated', 'latency2', 'fixed'] as const) {
    const m = combineRounds(live.perRound.flatMap((r) => (r[kind] ? [r[kind]] : [])));
    if (m) figures[kind] = m;
  }
  return {
    ...live.row,
    figures,
    rounds: live.perRound.map((r) => ({
      saturatedRate: r.saturated?.rate ?? Number.NaN,
      p99At2: r.latency2?.latency?.p99 ?? Number.NaN,
      p99Fixed: r.fixed?.latency?.p99 ?? Number.NaN,
    })),
  };
}

export const dataplane: Benchmark<DataplaneResult> = {
  name: 'dataplane',
  title: 'proxy latency, CPU and throughput (Trellis vs HAProxy), agent memory per service',
  async run(log) {
    const s = settings();
    const started = now();
    const group = new ProcessGroup();
    const notes: string[] = [];
    const note = (text: string): void => {
      log(`dataplane: ${text}`);
      notes.push(text);
    };
    try {
      const dir = group.tempDir('dataplane');
      const ca = testCa();
      const certs = { rootPem: ca.rootPem, web: ca.leaf('web'), api: ca.leaf('api') };
      const app: RunningApp = await startApp(group, s.bodyBytes, note);
      const ctx: PairContext = { group, dir, app, certs, upstreamHttp: s.upstreamHttp };
      const live: LiveRow[] = [];
      for (const spec of s.pairs) {
        log(`dataplane: ${spec.id}: starting`);
        live.push(await startRow(spec, ctx, s.bodyBytes, log));
      }
      for (let round = 1; round <= s.rounds; round++) {
        for (const l of live) {
          if (!l.running || l.row.failed) continue;
          try {
            await measureRound(l, round, ctx, s, log);
          } catch (err) {
            log(`dataplane: ${l.spec.id}: failed: ${describe(err)}`);
            l.row.failed = describe(err).slice(0, 500);
            await l.running.stop();
          }
        }
      }
      for (const l of live) if (l.running && !l.row.failed) await l.running.stop();
      let profile: DataplaneResult['profile'];
      if (s.profile && s.pairs.some((p) => p.id === 'trellis-http')) {
        log('dataplane: profiling the Trellis HTTP/1.1 pair');
        try {
          profile = await profileHttpPair(ctx, group, s.seconds, s.saturationConnections);
        } catch (err) {
          profile = { error: describe(err).slice(0, 300) };
        }
      }
      await group.stop(app.child);
      const pairs = live.map(finishRow);

      const counts = [0, ...s.services.filter((n) => n > 0)];
      const agent: DataplaneResult['agent'] = { rows: [], settleMs: s.settleSeconds * 1000 };
      try {
        agent.rows = await measureAgentRss(counts, agent.settleMs, group, log);
      } catch (err) {
        log(`dataplane: agent memory failed: ${describe(err)}`);
        agent.error = describe(err).slice(0, 500);
      }
      if (s.rssBefore) {
        const label = s.rssBefore.label;
        log(`dataplane: agent with no services, ${label}`);
        try {
          const bin = join(s.rssBefore.dist, 'src', 'bin', 'trellis.js');
          const [row] = await measureAgentRss([0], agent.settleMs, group, log, bin);
          agent.before = { label, ...(row ? { row } : {}) };
        } catch (err) {
          agent.before = { label, error: describe(err).slice(0, 300) };
        }
      }
      return {
        quick: s.quick,
        rounds: s.rounds,
        seconds: s.seconds,
        warmupSeconds: s.warmupSeconds,
        bodyBytes: s.bodyBytes,
        rate: s.rate,
        connections: s.connections,
        saturationConnections: s.saturationConnections,
        latencyConnections: s.latencyConnections,
        wrkThreads: s.wrkThreads,
        h2Streams: s.h2Streams,
        cores: availableParallelism(),
        versions: toolVersions(),
        app: app.kind,
        upstreamHttp: s.upstreamHttp,
        h2Baseline: s.h2Baseline,
        rssBaselineMib: s.rssBaselineMib,
        pairs,
        ...(profile ? { profile } : {}),
        agent,
        notes,
        elapsedMs: now() - started,
      };
    } finally {
      await group.stopAll();
    }
  },
  render: renderDataplane,
};
