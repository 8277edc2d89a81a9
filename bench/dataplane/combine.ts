/**
 * Rounds into one figure: rates and percentiles are medians over the rounds (so one stalled
 * round does not decide a row), counts, windows and CPU are sums, max is the highest.
 */
import type { LoadReport, Measurement, Percentiles } from './types.js';

export function median(values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Rounds into one figure: medians of rates and percentiles, sums of counts, windows and CPU. */
export function combineRounds(list: Measurement[]): Measurement | undefined {
  if (list.length === 0) return undefined;
  const sum = (f: (m: Measurement) => number): number => list.reduce((a, m) => a + f(m), 0);
  const cpuMs: Record<string, number> = {};
  for (const m of list)
    for (const [k, v] of Object.entries(m.cpuMs)) cpuMs[k] = (cpuMs[k] ?? 0) + v;
  const lat = list.flatMap((m) => (m.latency ? [m.latency] : []));
  const lags = list.flatMap((m) => (m.sendLag ? [m.sendLag] : []));
  return {
    tool: list[0]!.tool,
    rate: median(list.map((m) => m.rate)),
    requests: sum((m) => m.requests),
    errors: sum((m) => m.errors),
    errorNotes: [...new Set(list.flatMap((m) => m.errorNotes))].slice(0, 5),
    ...(lat.length
      ? {
          latency: {
            p50: median(lat.map((l) => l.p50)),
            p90: median(lat.map((l) => l.p90)),
            p99: median(lat.map((l) => l.p99)),
            max: Math.max(...lat.map((l) => l.max)),
          },
        }
      : {}),
    windowMs: sum((m) => m.windowMs),
    windowRequests: sum((m) => m.windowRequests),
    cpuMs,
    ...(lags.length
      ? {
          sendLag: {
            p50: median(lags.map((l) => l.p50)),
            p99: median(lags.map((l) => l.p99)),
            max: Math.max(...lags.map((l) => l.max)),
          },
        }
      : {}),
  };
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

/** The open-loop generator's reports of several rounds as one (the interception benchmark's). */
export function combineLoadReports(rounds: LoadReport[]): LoadReport | undefined {
  if (rounds.length === 0) return undefined;
  const sum = (f: (r: LoadReport) => number): number => rounds.reduce((a, r) => a + f(r), 0);
  const cpuMs: Record<string, number> = {};
  for (const r of rounds)
    for (const [k, v] of Object.entries(r.cpuMs)) cpuMs[k] = (cpuMs[k] ?? 0) + v;
  return {
    requests: sum((r) => r.requests),
    ok: sum((r) => r.ok),
    errors: sum((r) => r.errors),
    unanswered: sum((r) => r.unanswered),
    errorSamples: [...new Set(rounds.flatMap((r) => r.errorSamples))].slice(0, 5),
    windowMs: sum((r) => r.windowMs),
    rate: median(rounds.map((r) => r.rate)),
    latency: combinePercentiles(rounds.map((r) => r.latency)),
    sendLag: combinePercentiles(rounds.map((r) => r.sendLag)),
    cpuMs,
  };
}
