/**
 * The data-plane benchmark's fixed-rate (open-loop) load generator, in a process of its own;
 * wrk cannot hold a fixed rate, so this one measures latency at BENCH_DATAPLANE_RATE. Usage:
 *   node loadgen.js '<LoadJob JSON>'
 * stdout: `DATAPLANE-RESULT <LoadReport JSON>` when done.
 *
 * Requests are GET / (as wrk sends; or POSTs of `bodyBytes` when that is above 0, as the
 * interception benchmark sends to its Node app) over a pool of keep-alive HTTP/1.1 connections
 * (bench/dataplane/raw-http-client.ts, no pipelining); each answer must be 200 with exactly `expectBytes` of body. Request i is due at
 * t0 + i / rate whether or not earlier ones have answered, and its latency runs from that
 * intended time to the end of its response body, so a stall is charged to every request it
 * delays (no coordinated omission). The run warms up first; the CPU time of the processes named
 * in the job and of this generator is read from /proc at the start and the end of the measured
 * window, so the cost per request is the window's CPU / its requests.
 */
import { describe } from '../lib/errors.js';
import { processCpuMs } from '../lib/proc.js';
import { percentile } from '../lib/stats.js';
import { now } from '../lib/time.js';
import { RawHttpClient } from './raw-http-client.js';
import {
  GENERATOR,
  RESULT_MARK,
  type LoadJob,
  type LoadReport,
  type Percentiles,
} from './types.js';

const MAX_ERROR_SAMPLES = 5;
/** How long the open loop waits for answers after its last send before counting the rest lost. */
const DRAIN_MS = 10_000;

interface Errors {
  count: number;
  samples: string[];
}

function noteError(e: Errors, message: string): void {
  e.count++;
  if (e.samples.length < MAX_ERROR_SAMPLES && !e.samples.includes(message)) e.samples.push(message);
}

function summary(values: Float64Array, n: number): Percentiles {
  const sorted = Array.from(values.subarray(0, n)).sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: n,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1]! : Number.NaN,
    mean: n ? sum / n : Number.NaN,
  };
}

type CpuSnapshot = Record<string, number>;

function cpuSnapshot(pids: Record<string, number>): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      out[name] = processCpuMs(pid);
    } catch {
      out[name] = Number.NaN; // the process is gone: its row will say n/a
    }
  }
  const self = process.cpuUsage();
  out[GENERATOR] = (self.user + self.system) / 1000;
  return out;
}

function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const k of Object.keys(a)) out[k] = (b[k] ?? Number.NaN) - a[k]!;
  return out;
}

function openLoop(job: LoadJob, client: RawHttpClient): Promise<LoadReport> {
  const expectBytes = job.expectBytes ?? job.bodyBytes;
  const interval = 1000 / job.rate;
  const nWarm = Math.round(job.warmupMs / interval);
  const nMeasured = Math.max(1, Math.round(job.durationMs / interval));
  const total = nWarm + nMeasured;
  const latency = new Float64Array(nMeasured);
  const lag = new Float64Array(nMeasured);
  let nLatency = 0;
  let nLag = 0;
  const errors: Errors = { count: 0, samples: [] };
  let unanswered = nMeasured;
  let cpu0: CpuSnapshot = {};
  let windowStart = 0;
  const start = now() + 20;
  let i = 0;

  return new Promise<LoadReport>((resolve) => {
    let done = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(drainTimer);
      const windowEnd = now();
      const cpu = cpuDelta(cpu0, cpuSnapshot(job.cpuPids));
      if (unanswered > 0)
        noteError(errors, `${unanswered} request(s) unanswered ${DRAIN_MS} ms after the last send`);
      errors.count += Math.max(0, unanswered - 1);
      const windowMs = windowEnd - windowStart;
      resolve({
        requests: nMeasured,
        ok: nLatency,
        errors: errors.count,
        unanswered,
        errorSamples: errors.samples,
        windowMs,
        rate: (nLatency * 1000) / windowMs,
        latency: summary(latency, nLatency),
        sendLag: summary(lag, nLag),
        cpuMs: cpu,
      });
    };
    const fire = (intended: number, measured: boolean): void => {
      if (measured) lag[nLag++] = now() - intended;
      client.send((err, status, bytes) => {
        if (!measured || done) return;
        if (err) noteError(errors, describe(err));
        else if (status !== 200 || bytes !== expectBytes)
          noteError(errors, `HTTP ${status}, ${bytes} bytes (expected 200, ${expectBytes} bytes)`);
        else latency[nLatency++] = now() - intended;
        if (--unanswered === 0) finish();
      });
    };
    const tick = (): void => {
      const t = now();
      while (i < total && start + i * interval <= t) {
        if (i === nWarm) {
          cpu0 = cpuSnapshot(job.cpuPids);
          windowStart = now();
        }
        fire(start + i * interval, i >= nWarm);
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, start + i * interval - now()));
      else drainTimer = setTimeout(finish, DRAIN_MS);
    };
    setTimeout(tick, Math.max(0, start - now()));
  });
}

async function main(job: LoadJob): Promise<void> {
  const body = job.bodyBytes > 0 ? Buffer.alloc(job.bodyBytes, 0x61) : undefined;
  const client = new RawHttpClient(job.origin, job.connections, body);
  try {
    const report = await openLoop(job, client);
    process.stdout.write(`${RESULT_MARK} ${JSON.stringify(report)}\n`);
  } finally {
    client.close();
  }
}

const arg = process.argv[2];
if (!arg) {
  process.stderr.write("usage: loadgen.js '<job JSON>'\n");
  process.exitCode = 2;
} else {
  main(JSON.parse(arg) as LoadJob).catch((err: unknown) => {
    process.stderr.write(`loadgen: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
