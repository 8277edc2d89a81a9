/**
 * The Debian tools the data-plane benchmark drives: finding them, their versions, and running
 * wrk and h2load with their output parsed. While a tool runs, the CPU time of the tool itself
 * and of the processes named by the caller is read from /proc over a window inside the run
 * (a margin after the start and before the end are left out, so connection set-up and
 * tear-down do not count), which gives each process's share of a core at that load.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { processCpuMs } from '../lib/proc.js';
import { now, sleep } from '../lib/time.js';
import type { Child, ProcessGroup } from './children.js';
import { GENERATOR, type Measurement } from './types.js';

/** A binary: the env variable if set (must exist), else on PATH or in the sbin directories. */
export function findBinary(name: string, envVar: string): string | undefined {
  const given = process.env[envVar]?.trim();
  if (given) return existsSync(given) ? given : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export const wrkPath = (): string | undefined => findBinary('wrk', 'BENCH_WRK');
export const h2loadPath = (): string | undefined => findBinary('h2load', 'BENCH_H2LOAD');
export const nginxPath = (): string | undefined => findBinary('nginx', 'BENCH_NGINX');
export const haproxyPath = (): string | undefined => findBinary('haproxy', 'BENCH_HAPROXY');

/** What to tell an operator when a tool is missing. */
export function missing(tool: string, pkg: string, envVar: string): string {
  return `${tool} is not installed (apt-get install ${pkg}, or set ${envVar})`;
}

/** The first match of `re` in the tool's version output (stdout and stderr), or null. */
function version(bin: string | undefined, args: string[], re: RegExp): string | null {
  if (!bin) return null;
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5_000 });
  return re.exec(`${r.stdout ?? ''}\n${r.stderr ?? ''}`)?.[1] ?? null;
}

export function toolVersions(): {
  wrk: string | null;
  h2load: string | null;
  nginx: string | null;
  haproxy: string | null;
} {
  return {
    wrk: version(wrkPath(), ['-v'], /^wrk (\S+)/m),
    h2load: version(h2loadPath(), ['--version'], /nghttp2\/(\S+)/),
    nginx: version(nginxPath(), ['-v'], /nginx\/(\S+)/),
    haproxy: version(haproxyPath(), ['-v'], /version (\S+)/),
  };
}

/** Reads CPU ms of every named process; a process that is gone reads NaN (its cell says n/a). */
function cpuSnapshot(pids: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      out[name] = processCpuMs(pid);
    } catch {
      out[name] = Number.NaN;
    }
  }
  return out;
}

interface ToolRun {
  output: string;
  windowMs: number;
  cpuMs: Record<string, number>;
}

/**
 * Runs a generator for `seconds` and reads the CPU of it and of `pids` over the run less a
 * margin at each end. Throws (with its output) if it fails or overruns.
 */
async function runTool(
  group: ProcessGroup,
  name: string,
  command: string,
  args: string[],
  seconds: number,
  pids: Record<string, number>,
): Promise<ToolRun> {
  const child: Child = group.spawn({ name, command, args });
  const t0 = now();
  try {
    const margin = Math.min(500, seconds * 100);
    await sleep(margin);
    const all = { ...pids, [GENERATOR]: child.pid };
    const a = cpuSnapshot(all);
    const wa = now();
    await sleep(Math.max(0, t0 + seconds * 1000 - margin - now()));
    const b = cpuSnapshot(all);
    const windowMs = now() - wa;
    const code = await child.exited(seconds * 1000 + 30_000);
    if (code !== 0) throw new Error(`${name} exited with ${code}:\n${child.output().slice(-2000)}`);
    const cpuMs: Record<string, number> = {};
    for (const k of Object.keys(all)) cpuMs[k] = b[k]! - a[k]!;
    return { output: child.output(), windowMs, cpuMs };
  } finally {
    await group.stop(child);
  }
}

/** wrk's durations ("63.00us", "1.20ms", "2.00s", "1.00m") in ms. */
export function wrkTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'us'];
  return Number(m[1]) * factor;
}

/**
 * The parts of wrk's report this benchmark uses. Errors are its socket errors (connect, read,
 * write, timeout: events, not requests) plus its non-2xx/3xx answers.
 */
export function parseWrk(text: string): Omit<Measurement, 'windowMs' | 'windowRequests' | 'cpuMs'> {
  const rate = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(text)?.[1] ?? Number.NaN);
  const requests = Number(/^\s*(\d+) requests in /m.exec(text)?.[1] ?? Number.NaN);
  if (!Number.isFinite(rate) || !Number.isFinite(requests))
    throw new Error(`wrk: no "Requests/sec" in its output:\n${text.slice(-1500)}`);
  const errorNotes: string[] = [];
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock) {
    errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
    errorNotes.push(sock[0]);
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const bad = non2xx ? Number(non2xx[1]) : 0;
  if (non2xx) {
    errors += bad;
    errorNotes.push(non2xx[0]);
  }
  const pct = (p: number): number =>
    wrkTime(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text)?.[1] ?? '');
  const max = wrkTime(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m.exec(text)?.[1] ?? '');
  const latency = /Latency Distribution/.test(text)
    ? { p50: pct(50), p90: pct(90), p99: pct(99), max }
    : undefined;
  // wrk's rate counts every answer; only the successful (2xx/3xx) share of it counts here.
  return {
    tool: 'wrk',
    rate: requests > 0 ? (rate * Math.max(0, requests - bad)) / requests : 0,
    requests,
    errors,
    errorNotes,
    ...(latency ? { latency } : {}),
  };
}

export interface WrkJob {
  url: string;
  connections: number;
  threads: number;
  seconds: number;
  latency: boolean;
  /** Processes whose CPU is read over the run (the app and the path's proxies). */
  pids: Record<string, number>;
}

/** One wrk run (keep-alive GETs): its figures and the CPU of each process over the run. */
export async function runWrk(group: ProcessGroup, job: WrkJob): Promise<Measurement> {
  const args = [
    `-t${job.threads}`,
    `-c${job.connections}`,
    `-d${job.seconds}s`,
    '--timeout',
    '10s',
    ...(job.latency ? ['--latency'] : []),
    job.url,
  ];
  const run = await runTool(group, 'wrk', wrkPath()!, args, job.seconds, job.pids);
  const parsed = parseWrk(run.output);
  return {
    ...parsed,
    windowMs: run.windowMs,
    windowRequests: (parsed.rate * run.windowMs) / 1000,
    cpuMs: run.cpuMs,
  };
}

/**
 * The parts of h2load's report this benchmark uses. In h2load's counts, "succeeded" are 2xx/3xx
 * answers and "failed" holds every other request: non-2xx answers and the "errored" ones
 * (resets, connection failures; "timeout" is a subset of those), so errors = failed.
 */
export function parseH2load(
  text: string,
): Omit<Measurement, 'windowMs' | 'windowRequests' | 'cpuMs'> {
  const rate = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text)?.[1] ?? Number.NaN);
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      text,
    );
  if (!Number.isFinite(rate) || !req)
    throw new Error(`h2load: no "finished in" / "requests:" in its output:\n${text.slice(-1500)}`);
  const done = Number(req[3]);
  const succeeded = Number(req[4]);
  const failed = Number(req[5]);
  const errorNotes: string[] = [];
  if (failed) errorNotes.push(req[0]);
  const codes = /status codes: .*/.exec(text);
  if (failed && codes) errorNotes.push(codes[0]);
  // h2load's rate counts every finished request; only the successful share of it counts here.
  return {
    tool: 'h2load',
    rate: done > 0 ? (rate * succeeded) / done : 0,
    requests: done,
    errors: failed,
    errorNotes,
  };
}

export interface H2loadJob {
  url: string;
  connections: number;
  /** Streams in flight per connection (-m). */
  streams: number;
  seconds: number;
  pids: Record<string, number>;
}

/** One h2load run (prior-knowledge h2c GETs, one thread): figures and CPU. */
export async function runH2load(group: ProcessGroup, job: H2loadJob): Promise<Measurement> {
  const args = [
    '-t1',
    `-c${job.connections}`,
    `-m${job.streams}`,
    '-D',
    String(job.seconds),
    job.url,
  ];
  const run = await runTool(group, 'h2load', h2loadPath()!, args, job.seconds, job.pids);
  const parsed = parseH2load(run.output);
  return {
    ...parsed,
    windowMs: run.windowMs,
    windowRequests: (parsed.rate * run.windowMs) / 1000,
    cpuMs: run.cpuMs,
  };
}
