/**
 * The data-plane benchmark's report section: what ran and how, one table per figure (HTTP/1.1
 * saturated, latency at 2 connections, latency at a fixed rate, HTTP/2 saturated), the agent's
 * memory, and issue 12's goals table (measured, floor, goal, met?). Each table is followed by a
 * sentence, computed from the CPU figures, on whether the generator or the app was saturated.
 * Nothing here is a fixed claim: every statement is derived from the result.
 */
import { int, mib, ms, table } from '../lib/format.js';
import { PROXY_KEY, ROW } from './pairs.js';
import {
  APP,
  GENERATOR,
  type DataplaneResult,
  type FigureKind,
  type Measurement,
  type PairResult,
} from './types.js';

const NA = 'n/a';
/** A process at or above this share of one core is taken as saturated. */
const SATURATED_PCT = 90;

function signed(v: number): string {
  if (!Number.isFinite(v)) return NA;
  return `${v < 0 ? '-' : '+'}${ms(Math.abs(v))}`;
}

function fixed3(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : NA;
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v)}%` : NA;
}

function ratio(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : NA;
}

/** CPU over the window, in % of one core. */
function cpuPct(m: Measurement | undefined, key: string): number {
  if (!m || !(m.windowMs > 0) || m.cpuMs[key] === undefined) return Number.NaN;
  return (m.cpuMs[key] / m.windowMs) * 100;
}

function proxyCpuMs(m: Measurement): number {
  let sum = 0;
  let any = false;
  for (const [k, v] of Object.entries(m.cpuMs))
    if (k.startsWith(PROXY_KEY)) {
      sum += v;
      any = true;
    }
  return any ? sum : Number.NaN;
}

/** All proxy processes of the row together, in % of one core. */
function proxyPct(m: Measurement | undefined): number {
  if (!m || !(m.windowMs > 0)) return Number.NaN;
  return (proxyCpuMs(m) / m.windowMs) * 100;
}

/** CPU seconds per 1,000 requests (= CPU ms per request), per proxy of the pair. */
function perProxyPer1k(m: Measurement | undefined, p: PairResult): number {
  if (!m || p.proxies === 0 || !(m.windowRequests > 0)) return Number.NaN;
  return proxyCpuMs(m) / m.windowRequests / p.proxies;
}

function status(p: PairResult): string {
  if (p.skipped) return `skipped: ${p.skipped}`;
  if (p.failed) return `failed: ${p.failed.split('\n')[0]}`;
  return '';
}

function find(r: DataplaneResult, id: string): PairResult | undefined {
  return r.pairs.find((p) => p.id === id && !p.skipped && !p.failed);
}

function fig(p: PairResult | undefined, kind: FigureKind): Measurement | undefined {
  return p?.figures[kind];
}

function rateOf(p: PairResult | undefined, kind: FigureKind = 'saturated'): number {
  return fig(p, kind)?.rate ?? Number.NaN;
}

/** Added latency over the direct row's for the same figure. */
function added(
  p: PairResult | undefined,
  direct: PairResult | undefined,
  kind: FigureKind,
  q: 'p50' | 'p99',
): number {
  const a = fig(p, kind)?.latency?.[q];
  const b = fig(direct, kind)?.latency?.[q];
  return a !== undefined && b !== undefined ? a - b : Number.NaN;
}

/**
 * Whether the generator or the app was the bottleneck of a table: their highest CPU on the
 * proxied rows (which must stay below a core for the proxies to be what is measured) and on
 * the direct row (which is capped by one of them by design).
 */
function saturationSentence(rows: PairResult[], kind: FigureKind, generator: string): string {
  const measured = rows.filter((p) => fig(p, kind));
  if (measured.length === 0) return '';
  const proxied = measured.filter((p) => p.proxies > 0);
  const direct = measured.filter((p) => p.proxies === 0);
  const parts: string[] = [];
  const describeRows = (list: PairResult[], who: string, key: string): string[] => {
    const hot = list.filter((p) => cpuPct(fig(p, kind), key) >= SATURATED_PCT);
    const max = Math.max(...list.map((p) => cpuPct(fig(p, kind), key)).filter(Number.isFinite));
    if (!Number.isFinite(max)) return [];
    return [
      hot.length
        ? `${who} reached ${pct(max)} of a core on ${hot.map((p) => p.label).join(', ')}, so ` +
          `${hot.length === 1 ? 'that row is' : 'those rows are'} capped by ${who}, not only by the proxies`
        : `${who} stayed below ${SATURATED_PCT}% of a core on every proxied row (at most ${pct(max)})`,
    ];
  };
  if (proxied.length) {
    parts.push(...describeRows(proxied, generator, GENERATOR));
    parts.push(...describeRows(proxied, 'nginx', APP));
    if (kind === 'saturated') {
      // Nothing at a full core: the rate was set by waiting (or by other load on the machine).
      const idle = proxied.filter(
        (p) =>
          Math.max(
            cpuPct(fig(p, kind), GENERATOR),
            cpuPct(fig(p, kind), APP),
            proxyPct(fig(p, kind)),
          ) < SATURATED_PCT,
      );
      if (idle.length)
        parts.push(
          `on ${idle.map((p) => p.label).join(', ')} no process of the path reached ` +
            `${SATURATED_PCT}% of a core (proxy processes at ${idle.map((p) => pct(proxyPct(fig(p, kind)))).join(', ')}), ` +
            `so ${idle.length === 1 ? 'that rate was' : 'those rates were'} set by waiting ` +
            `(round trips × connections) or by other load on this machine, not by a full core`,
        );
    }
  }
  for (const d of direct) {
    const g = cpuPct(fig(d, kind), GENERATOR);
    const a = cpuPct(fig(d, kind), APP);
    parts.push(
      `on ${d.label} ${generator} used ${pct(g)} and nginx ${pct(a)} of a core` +
        (Math.max(g, a) >= SATURATED_PCT ? ` (that row is their limit, not a proxy's)` : ''),
    );
  }
  return parts.length ? `Generator and app: ${parts.join('; ')}.` : '';
}

function emptyRow(p: PairResult, width: number): string[] {
  return [p.label, status(p) || NA, ...Array<string>(width - 2).fill('')];
}

function intro(r: DataplaneResult): string {
  const v = r.versions;
  const tools = [
    v.wrk ? `wrk ${v.wrk}` : 'wrk (missing)',
    v.h2load ? `h2load ${v.h2load}` : 'h2load (missing)',
    r.app === 'nginx' ? `nginx ${v.nginx ?? ''}`.trim() : 'the Node fallback app (nginx missing)',
    v.haproxy ? `HAProxy ${v.haproxy}` : 'HAProxy (missing)',
  ];
  let text =
    `Proxies measured with a load generator and an app that are not the bottleneck: Debian's ` +
    `\`wrk\` and \`h2load\` as generators and \`nginx-light\` as the app ` +
    `(\`apt-get install wrk nginx-light haproxy nghttp2-client\`; a row whose tool is missing is ` +
    `skipped with a note). This run: ${tools.join(', ')}, ${r.cores} cores shared by everything. ` +
    `nginx runs as one process (\`master_process off\`, \`worker_processes 1\`, ` +
    `\`keepalive_requests 1000000\`, no access log) and answers every GET / with the same ` +
    `${int(r.bodyBytes)}-byte body, over HTTP/1.1 and over h2c. Rows: **nginx direct**; ` +
    `**HAProxy** as ONE process holding both sides of an mTLS pair (plain frontend -> backend ` +
    `with \`ssl crt ... verify required ca-file ...\` -> second frontend with \`bind ... ssl ` +
    `crt ... verify required ca-file ...\` -> nginx; \`mode http\`, \`http-reuse always\`, an ` +
    `XFCC-like header set), with \`nbthread 1\` and \`nbthread 2\`; **Trellis** as ONE Node ` +
    `process holding both ServiceProxies, as a dev agent does (web's upstream listener -> mTLS ` +
    `-> api's inbound with an allow intention -> nginx; Prometheus metrics kept; access log ` +
    `off, an agent's default, except in the rows that say "access log on", where it goes ` +
    `through pino to a pipe the benchmark drains), with protocol tcp and http` +
    `${r.upstreamHttp ? ` (upstreamHttp ${r.upstreamHttp})` : " (ServiceProxy's default upstreamHttp)"}; ` +
    `and for HTTP/2 nginx direct over h2c, the HAProxy pair with h2 on both hops, and the ` +
    `Trellis pair with protocol http2. The generator is \`wrk -t${r.wrkThreads}\` (one thread ` +
    `leaves the second core to the app and the proxies; its CPU, below, shows whether it was ` +
    `saturated), h2load runs one thread. CPU is utime + stime from /proc/PID/stat over a window ` +
    `inside each run; "per proxy" divides a pair's CPU by two, also where one process holds ` +
    `both proxies (Trellis, HAProxy). All rows were started first and measured in ${r.rounds} ` +
    `interleaved round(s) of ${r.seconds} s per figure after ${r.warmupSeconds} s of warm-up: ` +
    `rates and percentiles are medians over rounds, CPU the total over their windows.`;
  if (r.quick)
    text +=
      `\n\n**Smoke run (BENCH_DATAPLANE_QUICK=1): short rounds; these figures only show ` +
      `that the harness works and are not a measurement.**`;
  if (r.notes.length) text += `\n\nNotes: ${r.notes.join('; ')}.`;
  return text;
}

function saturatedTable(
  rows: PairResult[],
  ref: PairResult | undefined,
  refTitle: string,
  generator: string,
): string {
  const refRate = rateOf(ref);
  return table(
    [
      { title: 'Path' },
      { title: 'Requests/s', align: 'right' },
      { title: `× ${refTitle}`, align: 'right' },
      { title: 'Errors', align: 'right' },
      { title: `${generator} CPU`, align: 'right' },
      { title: 'nginx CPU', align: 'right' },
      { title: 'Proxy process(es) CPU', align: 'right' },
      { title: 'CPU s / 1,000 req, per proxy', align: 'right' },
    ],
    rows.map((p) => {
      const m = fig(p, 'saturated');
      if (!m) return emptyRow(p, 8);
      return [
        p.label,
        int(m.rate),
        p === ref || !Number.isFinite(refRate) ? '' : ratio(m.rate / refRate),
        int(m.errors),
        pct(cpuPct(m, GENERATOR)),
        pct(cpuPct(m, APP)),
        p.proxies ? pct(proxyPct(m)) : '',
        p.proxies ? fixed3(perProxyPer1k(m, p)) : '',
      ];
    }),
  );
}

function latencyTable(
  rows: PairResult[],
  direct: PairResult | undefined,
  kind: 'latency2' | 'fixed',
): string {
  const withCost = kind === 'fixed';
  const width = withCost ? 12 : 11;
  return table(
    [
      { title: 'Path' },
      { title: kind === 'fixed' ? 'Answered/s' : 'Requests/s', align: 'right' },
      { title: 'Errors', align: 'right' },
      { title: 'p50 ms', align: 'right' },
      { title: 'p90 ms', align: 'right' },
      { title: 'p99 ms', align: 'right' },
      { title: 'max ms', align: 'right' },
      { title: '+p50', align: 'right' },
      { title: '+p99', align: 'right' },
      { title: 'Generator CPU', align: 'right' },
      { title: 'nginx CPU', align: 'right' },
      ...(withCost ? [{ title: 'CPU s / 1,000 req, per proxy', align: 'right' as const }] : []),
    ],
    rows.map((p) => {
      const m = fig(p, kind);
      if (!m?.latency) return emptyRow(p, width);
      const isDirect = p.proxies === 0;
      return [
        p.label,
        int(m.rate),
        int(m.errors),
        ms(m.latency.p50),
        ms(m.latency.p90),
        ms(m.latency.p99),
        ms(m.latency.max),
        isDirect ? '' : signed(added(p, direct, kind, 'p50')),
        isDirect ? '' : signed(added(p, direct, kind, 'p99')),
        pct(cpuPct(m, GENERATOR)),
        pct(cpuPct(m, APP)),
        ...(withCost ? [p.proxies ? fixed3(perProxyPer1k(m, p)) : ''] : []),
      ];
    }),
  );
}

interface GoalRow {
  figure: string;
  measured: string;
  floor: string;
  goal: string;
  floorMet: boolean | undefined;
  goalMet: boolean | undefined;
}

function metText(g: GoalRow): string {
  if (g.goalMet === true) return g.floorMet === false ? 'goal met, floor NOT met' : 'goal met';
  if (g.floorMet === true) return g.goalMet === false ? 'floor met, goal not' : 'floor met';
  if (g.floorMet === false) return 'floor NOT met';
  if (g.goalMet === false) return 'goal not met (floor not measured)';
  return 'not measured';
}

const known = (...v: number[]): boolean => v.every(Number.isFinite);

function ratioGoal(
  figure: string,
  a: PairResult | undefined,
  b: PairResult | undefined,
  floor: number,
  goal: number,
): GoalRow {
  const ra = rateOf(a);
  const rb = rateOf(b);
  const q = ra / rb;
  return {
    figure,
    measured: known(q) ? `${ratio(q)} (${int(ra)} vs ${int(rb)} req/s)` : NA,
    floor: `≥ ${floor}×`,
    goal: `≥ ${goal}×`,
    floorMet: known(q) ? q >= floor : undefined,
    goalMet: known(q) ? q >= goal : undefined,
  };
}

function latencyGoal(figure: string, r: DataplaneResult, kind: 'latency2' | 'fixed'): GoalRow {
  const direct = find(r, ROW.direct);
  const ha = find(r, ROW.haproxy1);
  const http = find(r, ROW.http);
  const tcp = find(r, ROW.tcp);
  const [t50, t99] = [added(http, direct, kind, 'p50'), added(http, direct, kind, 'p99')];
  const [h50, h99] = [added(ha, direct, kind, 'p50'), added(ha, direct, kind, 'p99')];
  const [c50, c99] = [added(tcp, direct, kind, 'p50'), added(tcp, direct, kind, 'p99')];
  const ok = known(t50, t99, h50, h99);
  return {
    figure,
    measured:
      `http ${signed(t50)} / ${signed(t99)} ms; HAProxy ${signed(h50)} / ${signed(h99)} ms` +
      (known(c50, c99) ? `; tcp ${signed(c50)} / ${signed(c99)} ms` : ''),
    floor: 'p50 ≤ HAProxy’s + 0.2 ms, p99 ≤ HAProxy’s + 1 ms',
    goal: '≤ HAProxy’s',
    floorMet: ok ? t50 <= h50 + 0.2 && t99 <= h99 + 1 : undefined,
    goalMet: ok ? t50 <= h50 && t99 <= h99 : undefined,
  };
}

function goals(r: DataplaneResult): GoalRow[] {
  const ha1 = find(r, ROW.haproxy1);
  const ha2 = find(r, ROW.haproxy2);
  const http = find(r, ROW.http);
  const tcp = find(r, ROW.tcp);
  const workers = find(r, ROW.workers);
  const h2ha = find(r, ROW.h2haproxy);
  const grpc = find(r, ROW.grpc);
  const out: GoalRow[] = [
    ratioGoal(
      'HTTP/1.1 pair, saturated req/s vs HAProxy mTLS pair (nbthread 1, one process)',
      http,
      ha1,
      0.45,
      1.0,
    ),
    ratioGoal('HTTP/1.1 vs Trellis’s own TCP path, same run', http, tcp, 0.8, 1.0),
    ratioGoal('TCP pair vs HAProxy (nbthread 1)', tcp, ha1, 0.7, 1.0),
  ];
  const cpuFixed = http ? perProxyPer1k(fig(http, 'fixed'), http) : Number.NaN;
  const cpuSat = http ? perProxyPer1k(fig(http, 'saturated'), http) : Number.NaN;
  const haFixed = ha1 ? perProxyPer1k(fig(ha1, 'fixed'), ha1) : Number.NaN;
  out.push({
    figure: `CPU s per 1,000 requests, per proxy, HTTP/1.1 (at ${int(r.rate)} req/s)`,
    measured:
      `${fixed3(cpuFixed)} (saturated: ${fixed3(cpuSat)}; HAProxy nbthread 1 at ` +
      `${int(r.rate)} req/s: ${fixed3(haFixed)})`,
    floor: '≤ 0.25',
    goal: '≤ 0.15',
    floorMet: known(cpuFixed) ? cpuFixed <= 0.25 : undefined,
    goalMet: known(cpuFixed) ? cpuFixed <= 0.15 : undefined,
  });
  out.push(
    latencyGoal(
      `Added p50 / p99 over direct at ${r.latencyConnections} connections`,
      r,
      'latency2',
    ),
  );
  out.push(latencyGoal(`Added p50 / p99 over direct at ${int(r.rate)} req/s`, r, 'fixed'));
  const g = rateOf(grpc);
  const gh = rateOf(h2ha);
  // The earlier build measured in this run wins over a figure given from another run.
  const before = find(r, ROW.grpcBefore);
  const sameRun = known(rateOf(before));
  const base = sameRun ? rateOf(before) : (r.h2Baseline ?? Number.NaN);
  out.push({
    figure: 'gRPC / HTTP/2 pair, saturated req/s (h2load)',
    measured: known(g)
      ? `${int(g)} req/s, ${ratio(g / gh)} HAProxy h2` +
        (known(base)
          ? `, ${ratio(g / base)} the ${int(base)} req/s of ${sameRun ? `${before!.label.replace(/^Trellis pair before \((.*)\), protocol http2$/, '$1')} in this run` : 'a pre-M6 run'}`
          : '')
      : NA,
    floor: known(base)
      ? `≥ 3× today (${int(3 * base)} req/s)`
      : '≥ 3× today (set BENCH_DATAPLANE_BEFORE_DIST to an earlier build, or BENCH_DATAPLANE_H2_BASELINE)',
    goal: '≥ 0.75× HAProxy h2',
    floorMet: known(g, base) ? g >= 3 * base : undefined,
    goalMet: known(g, gh) ? g / gh >= 0.75 : undefined,
  });
  const w = rateOf(workers);
  const w2 = rateOf(ha2);
  out.push({
    figure: 'Data plane with workers vs HAProxy nbthread 2',
    measured: known(w)
      ? `${int(w)} vs ${int(w2)} req/s (${ratio(w / w2)})`
      : `n/a (no workers row${known(w2) ? `; HAProxy nbthread 2: ${int(w2)} req/s` : ''})`,
    floor: 'measured and reported',
    goal: '≥ 0.9×',
    floorMet: known(w) ? true : undefined,
    goalMet: known(w, w2) ? w / w2 >= 0.9 : undefined,
  });
  const zero = r.agent.rows.find((x) => x.services === 0);
  const rss = zero ? zero.rss / (1024 * 1024) : Number.NaN;
  // An earlier build measured in this run is the baseline; else the figure from another run.
  // "No regression" allows 5 % for the noise between two agents started one after the other.
  const prior = r.agent.before?.row ? r.agent.before.row.rss / (1024 * 1024) : Number.NaN;
  const rssSameRun = known(prior);

  const limit = rssSameRun ? prior * 1.05 : r.rssBaselineMib;
  out.push({
    figure: 'Agent RSS with no services',
    measured: known(rss)
      ? `${rss.toFixed(1)} MiB` +
        (rssSameRun ? ` (${r.agent.before!.label} in this run: ${prior.toFixed(1)} MiB)` : '')
      : NA,
    floor: rssSameRun
      ? `no regression (≤ ${limit.toFixed(1)} MiB: the earlier build + 5 %)`
      : `no regression (≤ ${r.rssBaselineMib} MiB)`,
    goal: '≤ 60 MiB',
    floorMet: known(rss) ? rss <= limit : undefined,
    goalMet: known(rss) ? rss <= 60 : undefined,
  });
  return out;
}

function memorySection(r: DataplaneResult): string {
  const rows = [...r.agent.rows].sort((a, b) => a.services - b.services);
  const positive = rows.filter((x) => x.services > 0);
  const lo = positive[0];
  const hi = positive[positive.length - 1];
  let text =
    `### Agent memory per local service\n\n` +
    `A fresh \`trellis agent\` per row with that many local services in its config dir, each ` +
    `with a sidecar proxy; VmRSS once every sidecar's public listener accepted connections and ` +
    `${(r.agent.settleMs / 1000).toFixed(0)} s more had passed, then again after a forced full GC.\n\n`;
  if (rows.length) {
    text += table(
      [
        { title: 'Local services', align: 'right' },
        { title: 'VmRSS MiB', align: 'right' },
        { title: 'VmRSS after GC MiB', align: 'right' },
        { title: 'V8 heap used after GC MiB', align: 'right' },
        { title: 'All sidecars listening after s', align: 'right' },
      ],
      rows.map((x) => [
        int(x.services),
        mib(x.rss),
        mib(x.rssAfterGc),
        mib(x.heapUsed),
        (x.readyMs / 1000).toFixed(1),
      ]),
    );
    if (lo && hi && hi.services > lo.services)
      text +=
        `\n\nEach extra local service (from ${lo.services} to ${hi.services}) cost ` +
        `${mib((hi.rss - lo.rss) / (hi.services - lo.services))} MiB of VmRSS ` +
        `(${mib((hi.heapUsed - lo.heapUsed) / (hi.services - lo.services))} MiB of V8 heap).`;
  }
  if (r.agent.error) text += `\n\nThe agent measurement failed: ${r.agent.error}`;
  return text;
}

/** The HTTP/1.1 pair's top frames by self time. */
function profileSection(p: NonNullable<DataplaneResult['profile']>): string {
  const head = '### Where the Trellis HTTP/1.1 pair spends its CPU (V8 profile at saturation)\n\n';
  if ('error' in p) return `${head}The profile could not be taken: ${p.error}`;
  return (
    head +
    `The pair's host ran once more with \`node --cpu-prof\` under wrk at saturation for ` +
    `${p.seconds} s: ${int(p.requests)} requests, ${int(p.busyMs)} ms of busy (non-idle) CPU, ` +
    `the host's start-up included. Self time by frame; native frames ` +
    `(\`writev\`, \`writeLatin1String\`, \`writeBuffer\`) include the system calls and the TLS ` +
    `encryption done inside them.\n\n` +
    table(
      [
        { title: 'Frame' },
        { title: 'Self ms', align: 'right' },
        { title: '% of busy', align: 'right' },
      ],
      p.rows.map((x) => [`\`${x.frame}\``, int(x.selfMs), `${x.pct.toFixed(1)}%`]),
    )
  );
}

export function renderDataplane(r: DataplaneResult): string {
  const h1 = r.pairs.filter((p) => p.http === 'h1');
  const h2 = r.pairs.filter((p) => p.http === 'h2');
  const direct = find(r, ROW.direct);
  const out: string[] = [intro(r)];

  out.push(
    `### HTTP/1.1 at saturation (wrk, ${r.saturationConnections} keep-alive connections)\n\n` +
      saturatedTable(h1, find(r, ROW.haproxy1), 'HAProxy nbthread 1', 'wrk') +
      `\n\nCPU in % of one core over the window. ${saturationSentence(h1, 'saturated', 'wrk')}`,
  );
  out.push(
    `### HTTP/1.1 latency at ${r.latencyConnections} connections (wrk --latency)\n\n` +
      `Closed loop: each connection sends its next request when the last answer is in. ` +
      `"+" columns are added over nginx direct.\n\n` +
      latencyTable(h1, direct, 'latency2') +
      `\n\n${saturationSentence(h1, 'latency2', 'wrk')}`,
  );
  const lags = h1.flatMap((p) => (p.figures.fixed?.sendLag ? [p.figures.fixed.sendLag] : []));
  const lagText = lags.length
    ? ` The generator sent at most ${ms(Math.max(...lags.map((l) => l.p99)))} ms behind ` +
      `schedule at p99 (worst row); that lateness is in every row and cancels out of the added latency.`
    : '';
  out.push(
    `### HTTP/1.1 latency at ${int(r.rate)} requests/s (open loop, Node generator)\n\n` +
      `wrk cannot hold a fixed rate, so the Node generator (bench/dataplane/loadgen.ts, a minimal ` +
      `HTTP/1.1 client over raw sockets so that its own CPU per request stays small, ` +
      `${r.connections} keep-alive connections) sends request i at t0 + i / rate whether or not ` +
      `earlier ones answered, and measures from that intended time, so a stall counts against ` +
      `every request it delays. Its CPU is shown beside it.\n\n` +
      latencyTable(h1, direct, 'fixed') +
      `\n\n${saturationSentence(h1, 'fixed', 'the Node generator')}${lagText}`,
  );
  out.push(
    `### HTTP/2 at saturation (h2load, prior-knowledge h2c, ${r.saturationConnections} ` +
      `connections × ${r.h2Streams} streams)\n\n` +
      saturatedTable(h2, find(r, ROW.h2haproxy), 'HAProxy h2', 'h2load') +
      `\n\nCPU in % of one core over the window. ${saturationSentence(h2, 'saturated', 'h2load')}` +
      `\n\n${h2Options(r)}`,
  );

  const spread = r.pairs
    .filter((p) => p.rounds.length > 1)
    .map(
      (p) =>
        `${p.label}: saturated ${p.rounds.map((x) => int(x.saturatedRate)).join(' / ')} req/s` +
        (p.http === 'h1'
          ? `; p99 at ${r.latencyConnections} conns ${p.rounds.map((x) => ms(x.p99At2)).join(' / ')} ms` +
            `; p99 at ${int(r.rate)} req/s ${p.rounds.map((x) => ms(x.p99Fixed)).join(' / ')} ms`
          : ''),
    );
  if (spread.length)
    out.push(`By round (the spread the medians smooth):\n\n- ${spread.join('\n- ')}`);

  const errorLines = r.pairs.flatMap((p) => {
    const notes = Object.values(p.figures).flatMap((m) => m.errorNotes);
    return notes.length ? [`- ${p.label}: ${[...new Set(notes)].slice(0, 3).join('; ')}`] : [];
  });
  if (errorLines.length) out.push(`Errors seen:\n\n${errorLines.join('\n')}`);

  if (r.profile) out.push(profileSection(r.profile));
  out.push(memorySection(r));

  const g = goals(r);
  out.push(
    `### Goals (issue 12)\n\n` +
      table(
        [
          { title: 'Figure' },
          { title: 'Measured' },
          { title: 'Floor (must)' },
          { title: 'Goal' },
          { title: 'Met?' },
        ],
        g.map((x) => [x.figure, x.measured, x.floor, x.goal, metText(x)]),
      ) +
      `\n\n${g.filter((x) => x.floorMet === true).length} of ${g.length} floors met, ` +
      `${g.filter((x) => x.goalMet === true).length} goals met` +
      (r.quick ? ' (smoke run: not a measurement).' : '.'),
  );
  out.push(
    `_The whole benchmark took ${(r.elapsedMs / 1000).toFixed(0)} s. Figures on a shared ` +
      `machine move by tens of percent between runs; compare rows of the same run._`,
  );
  return `${out.join('\n\n')}\n`;
}

/** The HTTP/2 options issue 12 asks to compare, with this run's figures where it has them. */
function h2Options(r: DataplaneResult): string {
  const now = rateOf(find(r, ROW.grpc));
  const before = find(r, ROW.grpcBefore);
  const then = rateOf(before);
  return (
    `The HTTP/2 options: **Node's HTTP/2 core API** (nghttp2 and its per-stream objects, no ` +
    `compatibility layer), what the proxies used before M6` +
    (known(then)
      ? ` (the "${before!.label}" row: ${int(then)} req/s in this run)`
      : ' (set BENCH_DATAPLANE_BEFORE_DIST to an earlier build to measure it in the same run)') +
    `; **HTTP/2 frames forwarded with only the headers decoded**, the proxy's own HTTP/2 ` +
    `connections with linked streams` +
    (known(now) ? ` (the protocol http2 row: ${int(now)} req/s)` : '') +
    `, which is kept; **HTTP/1.1 between the proxies** applies only where the application ` +
    `speaks HTTP/1.1, which the HTTP/1.1 rows measure (an HTTP/2 client's requests cross ` +
    `between the proxies as HTTP/2 unless BENCH_DATAPLANE_UPSTREAM_HTTP=http1 says otherwise).`
  );
}
