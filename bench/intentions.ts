/**
 * Intention decisions and how fast intention changes reach the agents.
 *
 *  1. decide(): policy's pure decision function over BENCH_IXN_INTENTIONS intentions in
 *     evaluation order, in this process, for three kinds of request: an L4 connection whose pair
 *     has an exact intention, an L4 connection no intention matches (every rule is looked at),
 *     and an HTTP request decided by the third of four L7 permissions.
 *  2. GET /v1/connect/intentions/check for the same requests against a real `trellis server`
 *     holding the same intentions (as 1 service-intentions entry per destination), closed loop
 *     at 1 and 16 concurrent clients.
 *  3. Propagation: BENCH_IXN_CACHES agent intention caches (the IntentionCache the agent runs,
 *     each with its own client and connection, all in this process) follow the server; one
 *     intention is written (PUT /v1/connect/intentions/exact) and the time from just before the
 *     write is sent until each cache has installed it is measured, BENCH_IXN_ROUNDS times, first
 *     with almost no intentions stored and then with all BENCH_IXN_INTENTIONS.
 *
 * BENCH_IXN_INTENTIONS (1000)   intentions stored (and decided over)
 * BENCH_IXN_DECIDE_MS (2000)    time per decide() row
 * BENCH_IXN_CHECK_MS (5000)     time per /check row
 * BENCH_IXN_CONCURRENCY (1,16)  /check clients
 * BENCH_IXN_CACHES (100)        agent caches
 * BENCH_IXN_ROUNDS (10)         intention writes timed per propagation row
 */
import { IntentionCache } from '../src/agent/connect/intention-cache.js';
import type { Intention } from '../src/api/index.js';
import { createClient, type TrellisClient } from '../src/client/index.js';
import { systemClock } from '../src/core/index.js';
import {
  decide,
  sortIntentions,
  type IntentionRule,
  type Permission,
  type Request,
} from '../src/policy/index.js';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { measureCpu, type CpuShare } from './lib/cpu.js';
import { int, ms, table } from './lib/format.js';
import { makePool, putJson, sendOk } from './lib/http.js';
import { runLoad } from './lib/load.js';
import { startServer, type BenchServer } from './lib/server.js';
import { summarize, type LatencySummary } from './lib/stats.js';
import { now, sleep, waitFor } from './lib/time.js';

export interface DecideRow {
  /** decide() over every intention, or the agent cache's decide() (indexed by pair). */
  how: string;
  request: string;
  calls: number;
  perSecond: number;
  nsPerCall: number;
}

export interface CheckRow {
  request: string;
  concurrency: number;
  requests: number;
  errors: number;
  errorSamples: string[];
  perSecond: number;
  latency: LatencySummary;
  cpu: CpuShare;
}

export interface PropagationRow {
  stored: number;
  caches: number;
  rounds: number;
  /** Per round: from just before the write to the last cache having it. */
  allSeen: LatencySummary;
  /** Every cache in every round: from just before the write to that cache having it. */
  eachSeen: LatencySummary;
  writeAck: LatencySummary;
  /** Rounds in which some cache never saw the write. */
  incomplete: number;
  /** Bytes of one intention-state answer (what each cache downloads per change). */
  stateBytes: number;
  cpu: CpuShare;
}

export interface IntentionsResult {
  intentions: number;
  decide: DecideRow[];
  check: CheckRow[];
  propagation: PropagationRow[];
}

interface Spec {
  source: string;
  destination: string;
  action?: 'allow' | 'deny';
  permissions?: Permission[];
}

const L7: Permission[] = [
  { Action: 'deny', HTTP: { PathExact: '/admin' } },
  { Action: 'allow', HTTP: { PathPrefix: '/public/', Methods: ['GET', 'HEAD'] } },
  { Action: 'allow', HTTP: { PathRegex: '^/v[0-9]+/items/[0-9]+$' } },
  { Action: 'deny', HTTP: { Header: [{ Name: 'x-debug', Present: true }] } },
];

const pad = (n: number): string => String(n).padStart(3, '0');

/**
 * `n` intentions: per destination svc-NNN, nine exact sources (every third with the L7
 * permissions above) and a `*` source; the rest as client-K => *.
 */
function specs(n: number): Spec[] {
  const out: Spec[] = [];
  const destinations = Math.max(1, Math.floor(n / 10));
  for (let d = 0; d < destinations && out.length < n; d++) {
    for (let s = 0; s < 9 && out.length < n; s++) {
      const l7 = s % 3 === 2;
      out.push({
        source: `client-${s}`,
        destination: `svc-${pad(d)}`,
        ...(l7 ? { permissions: L7 } : { action: s % 2 === 0 ? 'allow' : 'deny' }),
      });
    }
    if (out.length < n) out.push({ source: '*', destination: `svc-${pad(d)}`, action: 'deny' });
  }
  for (let k = 0; out.length < n; k++)
    out.push({ source: `client-${9 + k}`, destination: '*', action: 'allow' });
  return out;
}

interface Shape {
  name: string;
  requests: Request[];
}

/** The three request shapes, each a cycle of 256 concrete requests. */
function shapes(n: number): Shape[] {
  const destinations = Math.max(1, Math.floor(n / 10));
  const l4: Request[] = [];
  const l7: Request[] = [];
  for (let i = 0; i < 256; i++) {
    const d = `svc-${pad((i * 37) % destinations)}`;
    l4.push({ source: `client-${[0, 1, 3, 4][i % 4]}`, destination: d });
    l7.push({
      source: `client-${[2, 5, 8][i % 3]}`,
      destination: d,
      http: { path: `/v2/items/${i}`, method: 'GET', headers: { 'user-agent': 'bench' } },
    });
  }
  return [
    { name: 'L4, exact intention', requests: l4 },
    {
      name: 'L4, no intention matches (all examined)',
      requests: [{ source: 'nobody', destination: 'unknown' }],
    },
    { name: 'L7, third of four permissions', requests: l7 },
  ];
}

function rules(list: Spec[]): IntentionRule[] {
  return sortIntentions(
    list.map((s) => ({
      ID: `${s.source} => ${s.destination}`,
      SourceName: s.source,
      DestinationName: s.destination,
      ...(s.action ? { Action: s.action } : {}),
      ...(s.permissions ? { Permissions: s.permissions } : {}),
    })),
  );
}

function benchDecide(
  how: string,
  fn: (r: Request) => boolean,
  shape: Shape,
  durationMs: number,
): DecideRow {
  const reqs = shape.requests;
  let calls = 0;
  let sink = 0;
  const t0 = now();
  const until = t0 + durationMs;
  // Batches of 1,000 keep the clock out of the measurement.
  while (now() < until) {
    for (let i = 0; i < 1000; i++) {
      if (fn(reqs[(calls + i) % reqs.length]!)) sink++;
    }
    calls += 1000;
  }
  const elapsed = now() - t0;
  if (sink < 0) throw new Error('unreachable');
  return {
    how,
    request: shape.name,
    calls,
    perSecond: (calls * 1000) / elapsed,
    nsPerCall: (elapsed * 1e6) / calls,
  };
}

/** The specs as the servers send them to agents. */
function wire(list: Spec[]): Intention[] {
  return list.map((s) => ({
    SourceName: s.source,
    DestinationName: s.destination,
    ...(s.action ? { Action: s.action } : {}),
    ...(s.permissions ? { Permissions: s.permissions } : {}),
    Precedence: 0,
    CreateIndex: 1,
    ModifyIndex: 1,
  }));
}

function checkPath(r: Request): string {
  const q = [
    `source=${encodeURIComponent(r.source)}`,
    `destination=${encodeURIComponent(r.destination)}`,
  ];
  if (r.http) {
    q.push(`path=${encodeURIComponent(r.http.path)}`, `method=${r.http.method}`);
    for (const [k, v] of Object.entries(r.http.headers))
      q.push(`header=${encodeURIComponent(`${k}:${v ?? ''}`)}`);
  }
  return `/v1/connect/intentions/check?${q.join('&')}`;
}

/** Stores the specs as one service-intentions entry per destination. */
async function load(server: BenchServer, list: Spec[]): Promise<void> {
  const pool = makePool(server.origin, { connections: 4 });
  try {
    // L7 permissions need an HTTP-family protocol: make every service http.
    await putJson(pool, '/v1/config', {
      Kind: 'proxy-defaults',
      Name: 'global',
      Config: { protocol: 'http' },
    });
    const byDest = new Map<string, Spec[]>();
    for (const s of list) {
      const l = byDest.get(s.destination) ?? [];
      l.push(s);
      byDest.set(s.destination, l);
    }
    const entries = [...byDest.entries()];
    await runLoad({
      concurrency: 4,
      count: entries.length,
      op: async (i) => {
        const [name, sources] = entries[i]!;
        await putJson(pool, '/v1/config', {
          Kind: 'service-intentions',
          Name: name,
          Sources: sources.map((s) => ({
            Name: s.source,
            ...(s.action ? { Action: s.action } : {}),
            ...(s.permissions ? { Permissions: s.permissions } : {}),
          })),
        });
      },
    });
    const stored = JSON.parse(
      (await sendOk(pool, 'GET', '/v1/connect/intentions')).body,
    ) as unknown[];
    if (stored.length < list.length)
      throw new Error(`loaded ${stored.length} intentions, expected ${list.length}`);
  } finally {
    await pool.close();
  }
}

async function benchCheck(
  server: BenchServer,
  shape: Shape,
  concurrency: number,
  durationMs: number,
): Promise<CheckRow> {
  const pool = makePool(server.origin, { connections: concurrency });
  const paths = shape.requests.map(checkPath);
  try {
    await sendOk(pool, 'GET', paths[0]!);
    const { value: r, cpu } = await measureCpu(server.cpuMs, () =>
      runLoad({
        concurrency,
        durationMs,
        op: async (i) => {
          await sendOk(pool, 'GET', paths[i % paths.length]!);
        },
      }),
    );
    return {
      request: shape.name,
      concurrency,
      requests: r.ops,
      errors: r.errors,
      errorSamples: r.errorSamples,
      perSecond: r.rate,
      latency: summarize(r.latenciesMs),
      cpu,
    };
  } finally {
    await pool.close();
  }
}

const quiet = { info() {}, warn() {}, error() {} };

async function propagation(
  server: BenchServer,
  caches: IntentionCache[],
  stored: number,
  rounds: number,
  log: Log,
): Promise<PropagationRow> {
  const ctl = makePool(server.origin, { connections: 1 });
  const allSeen: number[] = [];
  const eachSeen: number[] = [];
  const acks: number[] = [];
  let incomplete = 0;
  try {
    const { cpu } = await measureCpu(server.cpuMs, async () => {
      for (let r = 0; r < rounds; r++) {
        const marker = `round ${stored}-${r}`;
        const seenAt = new Array<number>(caches.length).fill(Number.NaN);
        let seen = 0;
        const offs = caches.map((c, i) =>
          c.onChange((s) => {
            if (!Number.isNaN(seenAt[i]!)) return;
            if (s.intentions.some((x) => x.SourceName === 'probe' && x.Description === marker)) {
              seenAt[i] = now();
              seen++;
            }
          }),
        );
        const t0 = now();
        await putJson(ctl, '/v1/connect/intentions/exact?source=probe&destination=probe', {
          Action: r % 2 === 0 ? 'allow' : 'deny',
          Description: marker,
        });
        acks.push(now() - t0);
        const complete = await waitFor(() => seen === caches.length, 30_000, 1);
        for (const off of offs) off();
        if (!complete) incomplete++;
        const times = seenAt.filter((x) => !Number.isNaN(x)).map((x) => x - t0);
        eachSeen.push(...times);
        if (complete) allSeen.push(Math.max(...times));
        await sleep(100);
      }
    });
    const state = await sendOk(ctl, 'GET', '/v1/internal/trellis/connect/intention-state');
    const row: PropagationRow = {
      stored,
      caches: caches.length,
      rounds,
      allSeen: summarize(allSeen),
      eachSeen: summarize(eachSeen),
      writeAck: summarize(acks),
      incomplete,
      stateBytes: Buffer.byteLength(state.body),
      cpu,
    };
    log(
      `  ${stored} stored: all ${caches.length} caches had the write after p50 ${ms(row.allSeen.p50)} ms, max ${ms(row.allSeen.max)} ms`,
    );
    return row;
  } finally {
    await ctl.close();
  }
}

export const intentions: Benchmark<IntentionsResult> = {
  name: 'intentions',
  title: 'intention checks and propagation to agent caches',
  async run(log) {
    const n = envInt('BENCH_IXN_INTENTIONS', 1000);
    const decideMs = envInt('BENCH_IXN_DECIDE_MS', 2000);
    const checkMs = envInt('BENCH_IXN_CHECK_MS', 5000);
    const concurrencies = envIntList('BENCH_IXN_CONCURRENCY', [1, 16]);
    const cacheCount = envInt('BENCH_IXN_CACHES', 100);
    const rounds = envInt('BENCH_IXN_ROUNDS', 10);
    const list = specs(n);
    const sorted = rules(list);
    const kinds = shapes(n);

    log(`intentions: decide() over ${sorted.length} intentions`);
    // Never started: it only decides over the state given to it.
    const localClient = createClient({ addresses: ['127.0.0.1:1'], clock: systemClock });
    const local = new IntentionCache({ client: localClient, clock: systemClock, log: quiet });
    local.update({ DefaultAllow: false, Index: 1, Intentions: wire(list) });
    const decideRows = [
      ...kinds.map((k) =>
        benchDecide('decide() over all', (r) => decide(sorted, r, false).allowed, k, decideMs),
      ),
      ...kinds.map((k) =>
        benchDecide('agent cache decide()', (r) => local.decide(r).allowed, k, decideMs),
      ),
    ];
    await localClient.close();

    const server = await startServer({
      name: 'intentions',
      args: ['--acl-default-policy', 'allow'],
    });
    const clients: TrellisClient[] = [];
    const caches: IntentionCache[] = [];
    try {
      log(`intentions: starting ${cacheCount} agent caches`);
      for (let i = 0; i < cacheCount; i++) {
        const client = createClient({ addresses: [server.origin], clock: systemClock });
        clients.push(client);
        const c = new IntentionCache({ client, clock: systemClock, log: quiet });
        caches.push(c);
        c.start();
      }
      const ready = await waitFor(() => caches.every((c) => c.ready), 30_000);
      if (!ready) throw new Error('the agent caches did not load within 30 s');
      await sleep(500);
      log('intentions: propagation with almost nothing stored');
      const propagationRows = [await propagation(server, caches, 1, rounds, log)];

      log(`intentions: storing ${n} intentions`);
      await load(server, list);
      await waitFor(() => caches.every((c) => c.intentions.length > n), 60_000);
      await sleep(500);
      log(`intentions: propagation with ${n} stored`);
      propagationRows.push(await propagation(server, caches, n + 1, rounds, log));

      // Warm the server's code paths up first, so the first row is not the slow one.
      for (const k of kinds) await benchCheck(server, k, 4, 500);
      const checkRows: CheckRow[] = [];
      for (const k of kinds) {
        for (const c of concurrencies) {
          log(`intentions: /check "${k.name}" at ${c}`);
          checkRows.push(await benchCheck(server, k, c, checkMs));
        }
      }
      return {
        intentions: sorted.length,
        decide: decideRows,
        check: checkRows,
        propagation: propagationRows,
      };
    } finally {
      for (const c of caches) await c.stop();
      for (const c of clients) await c.close();
      await server.stop();
    }
  },
  render(r) {
    const decideTable = table(
      [
        { title: 'How' },
        { title: 'Request' },
        { title: 'Calls', align: 'right' },
        { title: 'Per second', align: 'right' },
        { title: 'ns per call', align: 'right' },
      ],
      r.decide.map((d) => [d.how, d.request, int(d.calls), int(d.perSecond), int(d.nsPerCall)]),
    );
    const checkTable = table(
      [
        { title: 'Request' },
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
      r.check.map((c) => [
        c.request,
        int(c.concurrency),
        int(c.requests),
        int(c.errors),
        int(c.perSecond),
        ms(c.latency.p50),
        ms(c.latency.p99),
        ms(c.latency.max),
        `${Math.round(c.cpu.server)}%`,
        `${Math.round(c.cpu.client)}%`,
      ]),
    );
    const propTable = table(
      [
        { title: 'Intentions stored', align: 'right' },
        { title: 'Caches', align: 'right' },
        { title: 'Writes', align: 'right' },
        { title: 'State bytes', align: 'right' },
        { title: 'Write ack p50 ms', align: 'right' },
        { title: 'All caches p50 ms', align: 'right' },
        { title: 'All caches max ms', align: 'right' },
        { title: 'Each cache p50 ms', align: 'right' },
        { title: 'Each cache p99 ms', align: 'right' },
        { title: 'Incomplete', align: 'right' },
        { title: 'Server CPU', align: 'right' },
        { title: 'Client CPU', align: 'right' },
      ],
      r.propagation.map((p) => [
        int(p.stored),
        int(p.caches),
        int(p.rounds),
        int(p.stateBytes),
        ms(p.writeAck.p50),
        ms(p.allSeen.p50),
        ms(p.allSeen.max),
        ms(p.eachSeen.p50),
        ms(p.eachSeen.p99),
        int(p.incomplete),
        `${Math.round(p.cpu.server)}%`,
        `${Math.round(p.cpu.client)}%`,
      ]),
    );
    const errors = r.check.flatMap((c) => c.errorSamples.map((e) => `- ${c.request}: ${e}`));
    return [
      `${int(r.intentions)} intentions: per destination, nine exact sources (every third with ` +
        'four L7 permissions: PathExact, PathPrefix with Methods, PathRegex, Header) and a `*` ' +
        'source. "No intention matches" is the worst case: every intention is examined before ' +
        'the default policy decides.',
      '',
      '### decide() in process',
      '',
      decideTable,
      '',
      '"decide() over all" is policy\'s decide() given every intention in evaluation order: it ' +
        'scans until the first whose names match. "agent cache decide()" is what the agent ' +
        'runs for /v1/agent/connect/authorize (and the proxies will call): it looks up the at ' +
        'most four intentions whose names can match (exact => exact, * => exact, exact => *, ' +
        '* => *) and gives only those to decide(), so its cost does not grow with the number ' +
        'of intentions. /check on the server does the same.',
      '',
      '### GET /v1/connect/intentions/check',
      '',
      checkTable,
      '',
      '### An intention write reaching 100 agent caches',
      '',
      propTable,
      '',
      'Read it this way: decide() is what the agent (and later the proxies) run for every ' +
        'connection or request; /check adds HTTP, ACL resolution and JSON around the same call. ' +
        'In the propagation table, times run from just before the write is sent to the moment ' +
        'each cache has installed the new state (the caches are in this process and each keeps ' +
        'its own blocking query open); "All caches" is the last of the caches per write. Every ' +
        'change sends the whole intention state to every cache ("State bytes" each), so with ' +
        'many intentions the time is the client process parsing that many copies on a shared ' +
        'CPU: see the client CPU column. CPU columns are % of one core over the timed writes ' +
        '(including the pauses between them).',
      ...(errors.length ? ['', 'Errors:', '', ...errors] : []),
    ].join('\n');
  },
};
