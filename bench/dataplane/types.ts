import type { ProfileResult } from './profile.js';
/** What the data-plane benchmark's parts exchange: jobs, generator reports, rows, the result. */

/** The Node open-loop generator's job (loadgen.ts), passed as JSON in argv[2]. */
export interface LoadJob {
  /** http://127.0.0.1:PORT: where the requests go (the app, or a client-side proxy). */
  origin: string;
  /** Requests per second, each due at a fixed time whether or not earlier ones answered. */
  rate: number;
  /** Keep-alive connections in the generator's pool. */
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Request body: 0 sends GET / (as wrk does, to nginx), more sends POST / with that many bytes. */
  bodyBytes: number;
  /** Every answer must be 200 with exactly this many body bytes (default: bodyBytes). */
  expectBytes?: number;
  /** Processes whose CPU time is read from /proc at the start and end of the measured window. */
  cpuPids: Record<string, number>;
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadReport {
  /** Requests that belong to the measured window (scheduled in it). */
  requests: number;
  ok: number;
  /** Failed requests, the unanswered ones included. */
  errors: number;
  /** Requests still unanswered when the generator gave up waiting. */
  unanswered: number;
  errorSamples: string[];
  /** The measured window, ms (first measured send to last measured answer). */
  windowMs: number;
  /** Successful requests per second over the window. */
  rate: number;
  /** Latency from each request's intended send time to the end of its answer, ms. */
  latency: Percentiles;
  /** How late the generator actually sent, behind the schedule (its own quality). */
  sendLag: Percentiles;
  /** CPU ms used in the window by each process of `cpuPids`, and by the generator ("generator"). */
  cpuMs: Record<string, number>;
}

export const RESULT_MARK = 'DATAPLANE-RESULT';
export const READY_MARK = 'DATAPLANE-READY';

/** The CPU key of the load generator's own process in every measurement. */
export const GENERATOR = 'generator';
/** The CPU key of the app (nginx). */
export const APP = 'app';

/**
 * One measurement of one path, whichever tool made it (wrk, h2load or the Node open loop):
 * what the tool reported, and the CPU each process used over a window inside the run.
 */
export interface Measurement {
  tool: 'wrk' | 'h2load' | 'loadgen';
  /** Successful requests per second (the tool's own figure). */
  rate: number;
  /** Requests the tool counted as done. */
  requests: number;
  /** Socket errors, timeouts, non-2xx answers, unanswered requests. */
  errors: number;
  errorNotes: string[];
  /** Latency percentiles in ms, where the tool gives them. */
  latency?: { p50: number; p90: number; p99: number; max: number };
  /** The window (inside the run) over which cpuMs was read, ms. */
  windowMs: number;
  /** Requests answered in that window (rate × window for wrk and h2load). */
  windowRequests: number;
  /** CPU ms in the window, by process: GENERATOR, APP and the row's proxy processes. */
  cpuMs: Record<string, number>;
  /** Open loop only: how late the generator sent behind its schedule. */
  sendLag?: { p50: number; p99: number; max: number };
}

/** The figures a row gets, each from one tool. */
export type FigureKind = 'saturated' | 'latency2' | 'fixed';

/** One row of the report: a path the load went through, or why it did not run. */
export interface PairResult {
  id: string;
  label: string;
  /** h1: wrk and the open loop; h2: h2load (prior-knowledge h2c). */
  http: 'h1' | 'h2';
  trellis: boolean;
  /** Proxies on the path (2 for a pair, 0 for direct), for CPU per proxy. */
  proxies: number;
  /** Why it did not run (e.g. haproxy missing). */
  skipped?: string;
  /** Why it failed part-way (the other rows still ran). */
  failed?: string;
  /** All rounds combined (medians of rates and percentiles; sums of windows and CPU). */
  figures: Partial<Record<FigureKind, Measurement>>;
  /** Per round, for showing the spread. */
  rounds: { saturatedRate: number; p99At2: number; p99Fixed: number }[];
}

export interface AgentRssRow {
  services: number;
  /** VmRSS once every sidecar listens and the agent has settled, bytes. */
  rss: number;
  /** VmRSS right after a forced full GC, bytes. */
  rssAfterGc: number;
  /** V8 heap in use after that GC, bytes. */
  heapUsed: number;
  /** From starting the agent until every sidecar listened, ms. */
  readyMs: number;
}

/** The load a run offers (from BENCH_DATAPLANE_* variables), reported with its results. */
export interface LoadSettings {
  quick: boolean;
  rounds: number;
  /** Seconds per figure per round (saturated, 2 connections, open loop). */
  seconds: number;
  warmupSeconds: number;
  bodyBytes: number;
  rate: number;
  /** Connections of the Node open loop. */
  connections: number;
  /** wrk and h2load connections at saturation. */
  saturationConnections: number;
  /** Connections of the latency run. */
  latencyConnections: number;
  wrkThreads: number;
  /** h2load streams in flight per connection. */
  h2Streams: number;
}

export interface ToolVersions {
  wrk: string | null;
  h2load: string | null;
  nginx: string | null;
  haproxy: string | null;
}

export interface DataplaneResult extends LoadSettings {
  cores: number;
  versions: ToolVersions;
  /** Whether the app was nginx (else the Node fallback app, which is the bottleneck). */
  app: 'nginx' | 'node';
  /** `upstreamHttp` given to Trellis's proxies, or undefined for ServiceProxy's default. */
  upstreamHttp: string | undefined;
  /** Today's HTTP/2 pair req/s from an earlier run (the "3× today" floor), if given. */
  h2Baseline: number | undefined;
  /** Agent RSS with no services before M6, MiB (the "no regression" floor). */
  rssBaselineMib: number;
  pairs: PairResult[];
  /** The HTTP/1.1 pair's CPU profile at saturation (BENCH_DATAPLANE_PROFILE=0: skipped). */
  profile?: ProfileResult | { error: string };
  agent: {
    rows: AgentRssRow[];
    error?: string;
    settleMs: number;
    /** The same figure for an earlier build in this run (BENCH_DATAPLANE_RSS_BEFORE_DIST). */
    before?: { label: string; row?: AgentRssRow; error?: string };
  };
  notes: string[];
  /** Wall time of the whole benchmark, ms. */
  elapsedMs: number;
}
