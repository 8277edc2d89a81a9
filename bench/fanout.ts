/**
 * Blocking-query fan-out. N watchers each hold GET /v1/health/service/fan?index=<current>&wait=60s
 * on their own keep-alive connection. Once all are parked:
 *   1. an unrelated write (a new service on another node): responses within 1 s are counted
 *      (expected 0: the server wakes only the watchers of what changed),
 *   2. a write that changes "fan" (re-registered with a new tag): for every watcher, the time
 *      from just before that write request was sent to the arrival of its response.
 * The watchers live in this process; the writes are sent by a separate small process
 * (lib/writer-process) so that their round trip is not held up by this process reading
 * thousands of responses. Both take timestamps from CLOCK_MONOTONIC (process.hrtime), which is
 * one clock for every process on the machine. A watcher's response "arrives" when its status
 * line and headers have been parsed by the client.
 *
 * BENCH_FANOUT_WATCHERS (1000,10000) watcher counts, one round each
 * BENCH_FANOUT_BATCH (500)           watchers started per step while parking them
 * BENCH_FANOUT_SETTLE_MS (2000)      pause after all requests are on the wire
 */
import type { Pool } from 'undici';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { measureCpu, type CpuShare } from './lib/cpu.js';
import { describe } from './lib/errors.js';
import { int, ms, seconds, table } from './lib/format.js';
import { makePool, putJson, sendOk } from './lib/http.js';
import { monoMs } from './lib/mono.js';
import { openFileLimit } from './lib/proc.js';
import { startRemoteWriter, type RemoteWriter } from './lib/remote-writer.js';
import { startServer, type BenchServer } from './lib/server.js';
import { summarize, type LatencySummary } from './lib/stats.js';
import { now, sleep, waitFor } from './lib/time.js';

export interface FanoutRound {
  requested: number;
  watchers: number;
  /** Time to get every watcher's request onto a connected socket. */
  parkMs: number;
  /** Requests on the wire without an answer when the writes started. */
  parked: number;
  /** Answers that came before any write (should be 0). */
  early: number;
  /** Answers within 1 s after the unrelated write (should be 0). */
  wokenByUnrelated: number;
  /** Answers after the "fan" write that carry a newer X-Consul-Index. */
  woken: number;
  /** Answers after the "fan" write whose index did not move (should be 0). */
  staleAnswers: number;
  /** Watchers that never answered within the wait for the last one. */
  missing: number;
  errors: number;
  errorSamples: string[];
  /** The "fan" write's own round trip (it is fsynced before it is answered). */
  writeAckMs: number;
  /** CPU of server and client from the write to the last answer, % of one core. */
  cpu: CpuShare;
  wake: LatencySummary;
}

export interface FanoutResult {
  openFileLimit: number;
  notes: string[];
  rounds: FanoutRound[];
}

const FD_HEADROOM = 1024;
const UNRELATED_WINDOW_MS = 1000;
const PARK_TIMEOUT_MS = 40_000;
const WAKE_TIMEOUT_MS = 60_000;

interface Arrival {
  t: number;
  status: number;
  index: number;
  error?: string;
}

function fanBody(tag: string): object {
  return {
    Node: 'fan-node',
    Address: '10.200.0.1',
    Service: { ID: 'fan', Service: 'fan', Port: 9000, Tags: [tag] },
  };
}

async function round(
  server: BenchServer,
  ctl: Pool,
  writer: RemoteWriter,
  n: number,
  requested: number,
  k: number,
  log: Log,
): Promise<FanoutRound> {
  const batch = envInt('BENCH_FANOUT_BATCH', 500);
  const settleMs = envInt('BENCH_FANOUT_SETTLE_MS', 2000);
  const start = await sendOk(ctl, 'GET', '/v1/health/service/fan');
  const path = `/v1/health/service/fan?index=${start.index}&wait=60s`;
  const pool = makePool(server.origin, { connections: n });
  const arrivals: Arrival[] = [];
  let closing = false;

  const watch = (): void => {
    pool.request({ method: 'GET', path }).then(
      async (res) => {
        const t = monoMs();
        const raw = res.headers['x-consul-index'];
        const index = Number(Array.isArray(raw) ? raw[0] : (raw ?? 0));
        await res.body.dump();
        if (!closing) arrivals.push({ t, status: res.statusCode, index });
      },
      (err: unknown) => {
        if (!closing) arrivals.push({ t: monoMs(), status: 0, index: 0, error: describe(err) });
      },
    );
  };

  try {
    log(`fanout: parking ${n} watchers`);
    const t0 = now();
    let launched = 0;
    while (launched < n) {
      const step = Math.min(batch, n - launched);
      for (let i = 0; i < step; i++) watch();
      launched += step;
      const target = launched;
      await waitFor(() => pool.stats.running + arrivals.length >= target, PARK_TIMEOUT_MS / 4);
    }
    await waitFor(() => pool.stats.running + arrivals.length >= n, PARK_TIMEOUT_MS);
    const parkMs = now() - t0;
    await sleep(settleMs);
    const parked = pool.stats.running;
    const early = arrivals.length;
    log(
      `  ${parked} of ${n} on the wire after ${seconds(parkMs)} s (+${settleMs} ms settle); ${early} answered early`,
    );

    const unrelated = await writer.put('/v1/catalog/register', {
      Node: `unrelated-node-${k}`,
      Address: '10.201.0.1',
      Service: { ID: `unrelated-${k}`, Service: `unrelated-${k}`, Port: 9001 },
    });
    const tUnrelated = unrelated.sentMs;
    await sleep(Math.max(0, tUnrelated + UNRELATED_WINDOW_MS - monoMs()));
    const wokenByUnrelated = arrivals.filter(
      (a) => a.t >= tUnrelated && a.t < tUnrelated + UNRELATED_WINDOW_MS,
    ).length;

    const { value: fan, cpu } = await measureCpu(server.cpuMs, async () => {
      const w = await writer.put('/v1/catalog/register', fanBody(`round-${k}`));
      await waitFor(() => arrivals.length >= n, WAKE_TIMEOUT_MS, 5);
      return w;
    });
    const tFan = fan.sentMs;
    const writeAckMs = fan.ackMs - fan.sentMs;
    if (unrelated.status !== 200 || fan.status !== 200) {
      throw new Error(`a fan-out write failed: HTTP ${unrelated.status}, ${fan.status}`);
    }

    const after = arrivals.filter((a) => a.t >= tFan);
    const ok = after.filter((a) => !a.error && a.status === 200 && a.index > start.index);
    const failed = arrivals.filter((a) => a.error || a.status !== 200);
    const result: FanoutRound = {
      requested,
      watchers: n,
      parkMs,
      parked,
      early,
      wokenByUnrelated,
      woken: ok.length,
      staleAnswers: after.filter((a) => !a.error && a.status === 200 && a.index <= start.index)
        .length,
      missing: n - arrivals.length,
      errors: failed.length,
      errorSamples: [...new Set(failed.map((a) => a.error ?? `HTTP ${a.status}`))].slice(0, 5),
      writeAckMs,
      cpu,
      wake: summarize(ok.map((a) => a.t - tFan)),
    };
    log(
      `  woke ${result.woken}/${n}: p50 ${ms(result.wake.p50)} ms, p99 ${ms(result.wake.p99)} ms, ` +
        `max ${ms(result.wake.max)} ms; unrelated write woke ${wokenByUnrelated}; errors ${result.errors}`,
    );
    return result;
  } finally {
    closing = true;
    await pool.destroy();
  }
}

export const fanout: Benchmark<FanoutResult> = {
  name: 'fanout',
  title: 'blocking-query fan-out',
  async run(log) {
    const limit = openFileLimit();
    const notes: string[] = [];
    const counts = envIntList('BENCH_FANOUT_WATCHERS', [1000, 10_000]).map((requested) => {
      const cap = limit - FD_HEADROOM;
      if (requested <= cap) return { requested, n: requested };
      const note =
        `${int(requested)} watchers need about ${int(requested + FD_HEADROOM)} open files per process ` +
        `but the limit (ulimit -n) is ${int(limit)}: measured ${int(cap)} instead.`;
      notes.push(note);
      log(`fanout: NOTE ${note}`);
      return { requested, n: cap };
    });
    const server = await startServer({ name: 'fanout' });
    const ctl = makePool(server.origin, { connections: 2 });
    let writer: RemoteWriter | undefined;
    try {
      await putJson(ctl, '/v1/catalog/register', fanBody('round-0'));
      writer = await startRemoteWriter(server.origin);
      const rounds: FanoutRound[] = [];
      for (const [k, c] of counts.entries()) {
        rounds.push(await round(server, ctl, writer, c.n, c.requested, k + 1, log));
      }
      return { openFileLimit: limit, notes, rounds };
    } finally {
      await writer?.close();
      await ctl.close();
      await server.stop();
    }
  },
  render(r) {
    const t = table(
      [
        { title: 'Watchers', align: 'right' },
        { title: 'Parked', align: 'right' },
        { title: 'Woken', align: 'right' },
        { title: 'Errors', align: 'right' },
        { title: 'Write ack ms', align: 'right' },
        { title: 'First woken ms', align: 'right' },
        { title: 'Wake p50 ms', align: 'right' },
        { title: 'Wake p99 ms', align: 'right' },
        { title: 'Last woken ms', align: 'right' },
        { title: 'Woken by unrelated write (1 s)', align: 'right' },
        { title: 'Server CPU', align: 'right' },
        { title: 'Client CPU', align: 'right' },
      ],
      r.rounds.map((x) => [
        int(x.watchers),
        int(x.parked),
        int(x.woken),
        int(x.errors),
        ms(x.writeAckMs),
        ms(x.wake.min),
        ms(x.wake.p50),
        ms(x.wake.p99),
        ms(x.wake.max),
        int(x.wokenByUnrelated),
        `${Math.round(x.cpu.server)}%`,
        `${Math.round(x.cpu.client)}%`,
      ]),
    );
    const odd = r.rounds.flatMap((x) => {
      const lines: string[] = [];
      if (x.early) lines.push(`- ${x.watchers} watchers: ${x.early} answered before any write.`);
      if (x.staleAnswers)
        lines.push(`- ${x.watchers} watchers: ${x.staleAnswers} answered without a newer index.`);
      if (x.missing) lines.push(`- ${x.watchers} watchers: ${x.missing} never answered.`);
      for (const e of x.errorSamples) lines.push(`- ${x.watchers} watchers: error ${e}`);
      return lines;
    });
    const parking = r.rounds.map((x) => `${int(x.watchers)} in ${seconds(x.parkMs)} s`).join(', ');
    return [
      'Every watcher holds `GET /v1/health/service/fan?index=<current>&wait=60s` on its own ' +
        'connection from one client process; the writes come from a second process. Times run ' +
        'from just before the write that re-registers `fan` with a new tag is sent to the ' +
        "arrival of each watcher's response (headers parsed by the client), on the machine's " +
        'monotonic clock shared by both processes.',
      '',
      t,
      '',
      'Read it this way: the write is fsynced and applied before any watcher is woken, and ' +
        '"Write ack" is its round trip as the writing process saw it: when it is much larger ' +
        'than "First woken", the write\'s own answer waited behind the wake-ups it caused. The ' +
        'spread from "First woken" to "Last woken" is the server answering N requests one after ' +
        'another (and the client reading them) on a shared CPU. "Woken by unrelated write" ' +
        'counts the watchers that got an answer within 1 s of a write to an unrelated service: ' +
        '0 means wake-ups are targeted. ' +
        'The CPU columns cover the time from the write to the last answer, in % of one core: ' +
        'a server near 100% is the bottleneck, a client near 100% would mean the figures ' +
        'understate the server (on a machine busy with other work neither may reach 100%: see ' +
        'the machine figure above). ' +
        `Parking (connecting and sending every request) took ${parking}.`,
      ...(r.notes.length ? ['', ...r.notes.map((n) => `Note: ${n}`)] : []),
      ...(odd.length ? ['', 'Anomalies:', '', ...odd] : []),
    ].join('\n');
  },
};
