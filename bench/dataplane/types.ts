/** What the data-plane benchmark's parent and its load generator (loadgen.ts) exchange. */

/** The load generator's job, passed as JSON in argv[2]. */
export interface LoadJob {
  /** http://127.0.0.1:PORT: where the requests go (the app, or a client-side proxy). */
  origin: string;
  /** open: fixed rate, latency from the intended send time; closed: `concurrency` in a loop. */
  mode: 'open' | 'closed';
  /** Requests per second (open loop). */
  rate: number;
  /** In-flight requests (closed loop). */
  concurrency: number;
  /** Keep-alive connections in the generator's pool. */
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Request body size (POST); the app answers with a body of the same size. */
  bodyBytes: number;
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
  mode: 'open' | 'closed';
  /** Requests that belong to the measured window (open: scheduled in it; closed: finished in it). */
  requests: number;
  ok: number;
  /** Failed requests, the unanswered ones included. */
  errors: number;
  /** Open loop: requests still unanswered when the generator gave up waiting. */
  unanswered: number;
  errorSamples: string[];
  /** The measured window, ms (open: first measured send to last measured answer). */
  windowMs: number;
  /** Successful requests per second over the window. */
  rate: number;
  /** Latency (open: from the intended send time; closed: from the actual send). */
  latency: Percentiles;
  /** Open loop: how late the generator actually sent, behind the schedule (its own quality). */
  sendLag?: Percentiles;
  /** CPU ms used in the window by each process of `cpuPids`, and by the generator ("loadgen"). */
  cpuMs: Record<string, number>;
}

export const RESULT_MARK = 'DATAPLANE-RESULT';
export const READY_MARK = 'DATAPLANE-READY';

/** One row of the report: a path the load went through, or why it did not run. */
export interface PairResult {
  id: string;
  label: string;
  trellis: boolean;
  reference: boolean;
  /** Whether the row has client- and server-side proxy processes (CPU columns). */
  proxies: boolean;
  /** Why it did not run (e.g. haproxy missing). */
  skipped?: string;
  /** Why it failed part-way (the other rows still ran). */
  failed?: string;
  /** All rounds combined (medians of percentiles and rates; sums of counts and CPU). */
  fixed?: LoadReport;
  saturated?: LoadReport;
  /** Per round, for showing the spread: the open loop's p99 and the saturated rate. */
  rounds: { p99: number; saturatedRate: number }[];
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
  rate: number;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  bodyBytes: number;
  connections: number;
  concurrency: number;
  saturationSeconds: number;
}

export interface DataplaneResult extends LoadSettings {
  cores: number;
  haproxyVersion: string | null;
  pairs: PairResult[];
  agent: { rows: AgentRssRow[]; error?: string; settleMs: number };
  /** Wall time of the whole benchmark, ms. */
  elapsedMs: number;
}
