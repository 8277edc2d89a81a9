/**
 * Read latency at size. Loads services x instances (each instance with a passing service check,
 * spread over the nodes so a service's instances are on distinct nodes) with concurrent
 * registrations, then times reads at 1 and 16 concurrent clients:
 *   GET /v1/status/leader (baseline: no catalog work), /v1/catalog/services,
 *   /v1/catalog/service/<one>, /v1/health/service/<one>?passing.
 * The server's memory is read from /proc/<pid>/status (VmRSS) before and after loading, and
 * after a forced full GC (the server runs with a small preload that collects on SIGUSR2).
 *
 * BENCH_READ_SERVICES (10000)          services
 * BENCH_READ_INSTANCES (10)            instances per service
 * BENCH_READ_NODES (1000)              nodes the instances are spread over
 * BENCH_READ_LOAD_CONCURRENCY (64)     concurrent registrations while loading
 * BENCH_READ_REQUESTS (2000)           requests per endpoint and concurrency...
 * BENCH_READ_MAX_S (15)                ...or fewer, if they take longer than this (seconds)
 * BENCH_READ_CONCURRENCY (1,16)        concurrent readers
 * The three catalog reads are also timed at 1 client with a write to the service they read
 * before each one (the write is not timed), so no answer computed earlier can be reused.
 * BENCH_READ_SETTLE_MS (3000)          idle time before the forced GC after loading
 */
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { directoryBytes } from './lib/files.js';
import { bytes, count, int, mib, ms, seconds, table } from './lib/format.js';
import { makePool, putJson, sendOk } from './lib/http.js';
import { runLoad } from './lib/load.js';
import { startProbe } from './lib/probe.js';
import { startServer, type BenchServer } from './lib/server.js';
import { summarize, type LatencySummary } from './lib/stats.js';
import { now, sleep } from './lib/time.js';

export interface LoadFigures {
  services: number;
  instances: number;
  nodes: number;
  concurrency: number;
  elapsedMs: number;
  perSecond: number;
  errors: number;
  errorSamples: string[];
  latency: LatencySummary;
  /** GET /v1/status/leader every 100 ms during the load: how long the server stalled. */
  probe: LatencySummary;
  dataDirBytes: number;
}

export interface MemoryPoint {
  when: string;
  rss: number;
  /** V8 heap in use, when measured right after a forced GC. */
  heapUsed?: number;
}

export interface ReadRow {
  endpoint: string;
  concurrency: number;
  /** Each read came right after a write to what it reads (only the read is timed). */
  afterWrite: boolean;
  requests: number;
  /** Requests asked for; fewer were made when the time cap was reached. */
  planned: number;
  errors: number;
  errorSamples: string[];
  perSecond: number;
  latency: LatencySummary;
  responseBytes: number;
  /** Entries in the answer (keys of an object, elements of a list). */
  items: number;
}

export interface ReadLatencyResult {
  /** Time cap per endpoint and concurrency (ms). */
  capMs: number;
  load: LoadFigures;
  memory: MemoryPoint[];
  peakRss: number;
  reads: ReadRow[];
}

interface Layout {
  services: number;
  instances: number;
  nodes: number;
}

/** Instance j of service s: its own service ID, on a node no other instance of s uses. */
function instanceBody(layout: Layout, i: number, tick = ''): object {
  const s = Math.floor(i / layout.instances);
  const j = i % layout.instances;
  const n = i % layout.nodes;
  const id = `svc-${s}-${j}`;
  return {
    Node: `node-${n}`,
    Address: `10.1.${(n >> 8) & 255}.${n & 255}`,
    NodeMeta: { rack: `r${n % 20}` },
    Service: {
      ID: id,
      Service: `svc-${s}`,
      Port: 20_000 + j,
      Tags: ['v1', `zone-${j % 3}`],
      Meta: tick ? { team: `t${s % 50}`, tick } : { team: `t${s % 50}` },
    },
    Check: { CheckID: `service:${id}`, Name: `${id} health`, Status: 'passing', ServiceID: id },
  };
}

function countItems(body: string): number {
  const v: unknown = JSON.parse(body);
  if (Array.isArray(v)) return v.length;
  if (v && typeof v === 'object') return Object.keys(v).length;
  return 1;
}

async function memoryAfterGc(server: BenchServer, when: string): Promise<MemoryPoint> {
  const heap = await server.collectGarbage();
  return { when, rss: server.memory().rss, heapUsed: heap.heapUsed };
}

async function load(
  server: BenchServer,
  layout: Layout,
  concurrency: number,
  log: Log,
): Promise<LoadFigures> {
  const total = layout.services * layout.instances;
  log(
    `read-latency: loading ${int(layout.services)} services, ${int(total)} instances on ${int(layout.nodes)} nodes (${concurrency} concurrent)`,
  );
  const pool = makePool(server.origin, { connections: concurrency });
  const probe = startProbe(server.origin, '/v1/status/leader', 100);
  try {
    const r = await runLoad({
      concurrency,
      count: total,
      op: async (i) => {
        await putJson(pool, '/v1/catalog/register', instanceBody(layout, i));
      },
    });
    const figures: LoadFigures = {
      ...layout,
      instances: total,
      concurrency,
      elapsedMs: r.elapsedMs,
      perSecond: r.rate,
      errors: r.errors,
      errorSamples: r.errorSamples,
      latency: summarize(r.latenciesMs),
      probe: await probe.stop(),
      dataDirBytes: directoryBytes(server.dataDir),
    };
    log(
      `  loaded in ${seconds(r.elapsedMs)} s (${int(r.rate)}/s, ${r.errors} errors, max ${ms(figures.latency.max)} ms)`,
    );
    return figures;
  } finally {
    await pool.close();
  }
}

const WARMUP = { count: 200, durationMs: 2000 };

interface ReadCase {
  endpoint: string;
  concurrency: number;
  /** Re-register one instance of the target service before each (untimed) read. */
  afterWrite: boolean;
}

/** Every endpoint at every concurrency, then the catalog reads right after a write (1 client). */
function readCases(target: string, levels: number[]): ReadCase[] {
  const endpoints = [
    '/v1/status/leader',
    '/v1/catalog/services',
    `/v1/catalog/service/${target}`,
    `/v1/health/service/${target}?passing`,
  ];
  const cases: ReadCase[] = [];
  for (const concurrency of levels) {
    for (const endpoint of endpoints) cases.push({ endpoint, concurrency, afterWrite: false });
  }
  for (const endpoint of endpoints.slice(1))
    cases.push({ endpoint, concurrency: 1, afterWrite: true });
  return cases;
}

async function measureReads(
  server: BenchServer,
  layout: Layout,
  capMs: number,
  log: Log,
): Promise<ReadRow[]> {
  const requests = envInt('BENCH_READ_REQUESTS', 2000);
  const levels = envIntList('BENCH_READ_CONCURRENCY', [1, 16]);
  const targetService = Math.floor(layout.services / 2);
  const target = `svc-${targetService}`;
  const rows: ReadRow[] = [];
  for (const c of readCases(target, levels)) {
    const pool = makePool(server.origin, { connections: c.concurrency + (c.afterWrite ? 1 : 0) });
    try {
      const sample = await sendOk(pool, 'GET', c.endpoint);
      const read = async (): Promise<void> => {
        await sendOk(pool, 'GET', c.endpoint);
      };
      // A change to the target service (a new Meta value on its first instance) touches every
      // read measured here, so none of them can be answered from anything computed before.
      const afterWrite = async (i: number): Promise<number> => {
        const body = instanceBody(layout, targetService * layout.instances, `w${i}`);
        await putJson(pool, '/v1/catalog/register', body);
        const t0 = now();
        await read();
        return now() - t0;
      };
      const op = c.afterWrite ? afterWrite : read;
      const warmup = { count: Math.min(WARMUP.count, requests), durationMs: WARMUP.durationMs };
      await runLoad({ concurrency: c.concurrency, ...warmup, op });
      const label = `GET ${c.endpoint}${c.afterWrite ? ' (each after a write)' : ''}`;
      log(
        `read-latency: ${label}, ${c.concurrency} concurrent, ${requests} requests (at most ${capMs / 1000} s)`,
      );
      const r = await runLoad({
        concurrency: c.concurrency,
        count: requests,
        durationMs: capMs,
        op,
      });
      const row: ReadRow = {
        endpoint: label,
        concurrency: c.concurrency,
        afterWrite: c.afterWrite,
        requests: r.ops,
        planned: requests,
        errors: r.errors,
        errorSamples: r.errorSamples,
        perSecond: r.rate,
        latency: summarize(r.latenciesMs),
        responseBytes: Buffer.byteLength(sample.body),
        items: countItems(sample.body),
      };
      log(
        `  p50 ${ms(row.latency.p50)} ms, p99 ${ms(row.latency.p99)} ms, ${int(row.perSecond)}/s`,
      );
      rows.push(row);
    } finally {
      await pool.close();
    }
  }
  return rows;
}

export const readLatency: Benchmark<ReadLatencyResult> = {
  name: 'read-latency',
  title: 'read latency and server memory with a loaded catalog',
  async run(log) {
    const layout: Layout = {
      services: envInt('BENCH_READ_SERVICES', 10_000),
      instances: envInt('BENCH_READ_INSTANCES', 10),
      nodes: envInt('BENCH_READ_NODES', 1000),
    };
    if (layout.instances > layout.nodes)
      throw new Error('BENCH_READ_INSTANCES must not exceed BENCH_READ_NODES');
    const server = await startServer({ name: 'read', gcHook: true });
    try {
      await sleep(1000);
      const memory: MemoryPoint[] = [
        await memoryAfterGc(server, 'started, empty catalog (after full GC)'),
      ];
      const figures = await load(server, layout, envInt('BENCH_READ_LOAD_CONCURRENCY', 64), log);
      memory.push({ when: 'just after loading', rss: server.memory().rss });
      await sleep(envInt('BENCH_READ_SETTLE_MS', 3000));
      memory.push(await memoryAfterGc(server, 'after loading, idle and a full GC'));
      const capMs = envInt('BENCH_READ_MAX_S', 15) * 1000;
      const reads = await measureReads(server, layout, capMs, log);
      memory.push({ when: 'after the read runs', rss: server.memory().rss });
      for (const m of memory)
        log(
          `  memory ${m.when}: RSS ${mib(m.rss)} MiB${m.heapUsed ? `, heap ${mib(m.heapUsed)} MiB` : ''}`,
        );
      return { capMs, load: figures, memory, peakRss: server.memory().peakRss, reads };
    } finally {
      await server.stop();
    }
  },
  render(r) {
    const l = r.load;
    const loadTable = table(
      [
        { title: 'Services', align: 'right' },
        { title: 'Instances', align: 'right' },
        { title: 'Nodes', align: 'right' },
        { title: 'Concurrency', align: 'right' },
        { title: 'Load time s', align: 'right' },
        { title: 'Writes/s', align: 'right' },
        { title: 'Errors', align: 'right' },
        { title: 'Write p50 ms', align: 'right' },
        { title: 'Write p99 ms', align: 'right' },
        { title: 'Write max ms', align: 'right' },
        { title: 'Probe max ms', align: 'right' },
        { title: 'Data dir', align: 'right' },
      ],
      [
        [
          int(l.services),
          int(l.instances),
          int(l.nodes),
          String(l.concurrency),
          seconds(l.elapsedMs),
          int(l.perSecond),
          int(l.errors),
          ms(l.latency.p50),
          ms(l.latency.p99),
          ms(l.latency.max),
          ms(l.probe.max),
          bytes(l.dataDirBytes),
        ],
      ],
    );
    const memTable = table(
      [
        { title: 'Server memory' },
        { title: 'VmRSS MiB', align: 'right' },
        { title: 'V8 heap used MiB', align: 'right' },
      ],
      [
        ...r.memory.map((m) => [
          m.when,
          mib(m.rss),
          m.heapUsed === undefined ? '' : mib(m.heapUsed),
        ]),
        ['peak over the run (VmHWM)', mib(r.peakRss), ''],
      ],
    );
    const readTable = table(
      [
        { title: 'Request' },
        { title: 'Clients', align: 'right' },
        { title: 'Requests', align: 'right' },
        { title: 'Errors', align: 'right' },
        { title: 'Per second', align: 'right' },
        { title: 'p50 ms', align: 'right' },
        { title: 'p99 ms', align: 'right' },
        { title: 'max ms', align: 'right' },
        { title: 'Answer', align: 'right' },
      ],
      r.reads.map((x) => [
        `\`${x.endpoint}\``,
        String(x.concurrency),
        x.requests < x.planned ? `${int(x.requests)}*` : int(x.requests),
        int(x.errors),
        x.afterWrite ? '—' : int(x.perSecond),
        ms(x.latency.p50),
        ms(x.latency.p99),
        ms(x.latency.max),
        `${count(x.items, 'entry', 'entries')}, ${bytes(x.responseBytes)}`,
      ]),
    );
    const errors = [
      ...l.errorSamples.map((e) => `- loading: ${e}`),
      ...r.reads.flatMap((x) =>
        x.errorSamples.map((e) => `- ${x.endpoint} at ${x.concurrency}: ${e}`),
      ),
    ];
    const capped = r.reads.filter((x) => x.requests < x.planned);
    const one = (endpoint: string, afterWrite: boolean): ReadRow | undefined =>
      r.reads.find(
        (x) =>
          x.concurrency === 1 && x.afterWrite === afterWrite && x.endpoint.startsWith(endpoint),
      );
    const all = one('GET /v1/catalog/services', false);
    const allCold = one('GET /v1/catalog/services', true);
    const health = one('GET /v1/health/service/', false);
    const healthCold = one('GET /v1/health/service/', true);
    const leader = one('GET /v1/status/leader', false);
    return [
      `The catalog is loaded with ${int(l.services)} services of ${int(l.instances / l.services)} ` +
        `instances each (${int(l.instances)} instances, each with a passing service check) on ` +
        `${int(l.nodes)} nodes by ${l.concurrency} concurrent registrations; every write is fsynced. ` +
        '"Probe max" is the worst latency of a `GET /v1/status/leader` sent every 100 ms on ' +
        `its own connection during the load (${int(l.probe.count)} probes, p50 ${ms(l.probe.p50)} ms): ` +
        "it shows the longest time the server's event loop was blocked. " +
        '"Data dir" is the size of the write-ahead log and snapshots after loading.',
      '',
      loadTable,
      '',
      memTable,
      '',
      readTable,
      ...(capped.length
        ? [
            '',
            `\\* fewer than ${int(capped[0]!.planned)} requests: the run stopped at its ${r.capMs / 1000} s cap (BENCH_READ_MAX_S).`,
          ]
        : []),
      '',
      'Read it this way: the leader row is the HTTP round trip with no catalog work, so the ' +
        'difference to it is the cost of the query and of encoding its answer. The plain rows ' +
        'repeat the same read with no write in between, so a server may answer them from ' +
        'work it already did; the "each after a write" rows change the service they read ' +
        'first, so each answer is computed afresh (the time of the write itself is left out, ' +
        'and so is a rate). ' +
        'With 16 clients on 2 shared cores latency is mostly queueing behind the other ' +
        'clients, so compare requests per second there. ' +
        (all && allCold && health && healthCold && leader
          ? `Here \`/v1/catalog/services\` (${count(all.items, 'entry', 'entries')}, ${bytes(all.responseBytes)}) ` +
            `took ${ms(all.latency.p50)} ms repeated and ${ms(allCold.latency.p50)} ms after a write ` +
            `(p50, 1 client), one service's health ${ms(health.latency.p50)} ms and ` +
            `${ms(healthCold.latency.p50)} ms, the leader ${ms(leader.latency.p50)} ms. `
          : '') +
        'Memory is the resident size of the server process (VmRSS); the figure after a full GC ' +
        'is the settled size of the catalog at this scale, and the peak includes the load and ' +
        'its snapshots.',
      ...(errors.length ? ['', 'Errors seen (first few):', '', ...errors] : []),
    ].join('\n');
  },
};
