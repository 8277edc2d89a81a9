/**
 * The data-plane benchmark's report section: tables at the fixed rate and at saturation, the
 * agent's memory per local service, the goals with met/not met computed from the numbers, and
 * a short reading of the figures (also computed: nothing here is a fixed claim).
 */
import { int, mib, ms, table } from '../lib/format.js';
import type { DataplaneResult, LoadReport, PairResult } from './types.js';

/** Goals from the issue. */
const GOAL_CPU_PER_1K = 0.2;
const GOAL_SATURATION_SHARE = 0.75;
const GOAL_BYTES_PER_SERVICE = 2_000_000;
/** Published figures the issue quotes, for context only (not measured here). */
const ENVOY_ADDED_P90 = 0.23;
const ENVOY_ADDED_P99 = 0.3;

const NA = 'n/a';

function signed(v: number): string {
  if (!Number.isFinite(v)) return NA;
  return `${v < 0 ? '-' : '+'}${ms(Math.abs(v))}`;
}

function fixed3(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : NA;
}

/**
 * CPU seconds per 1,000 requests (= CPU ms per request = vCPU at 1,000 req/s), over the
 * requests that were answered in the window (one way or the other).
 */
function cpuPer1k(r: LoadReport | undefined, who: string): number {
  const answered = r ? r.requests - (r.unanswered ?? 0) : 0;
  if (!r || answered <= 0) return Number.NaN;
  return (r.cpuMs[who] ?? Number.NaN) / answered;
}

/** Whether an open-loop run kept up with the offered rate (within 5%). */
function keptUp(r: LoadReport, rate: number): boolean {
  return r.errors === 0 && r.rate >= 0.95 * rate;
}

/** CPU over the window, in % of one core. */
function cpuPercent(r: LoadReport | undefined, who: string): number {
  if (!r || !(r.windowMs > 0)) return Number.NaN;
  return ((r.cpuMs[who] ?? Number.NaN) / r.windowMs) * 100;
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v)}%` : NA;
}

function status(p: PairResult): string {
  if (p.skipped) return `skipped: ${p.skipped}`;
  if (p.failed) return `failed: ${p.failed.split('\n')[0]}`;
  return '';
}

interface Goal {
  goal: string;
  row: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

function metText(m: boolean | undefined): string {
  return m === undefined ? 'not measured' : m ? 'met' : 'NOT met';
}

export function renderDataplane(r: DataplaneResult): string {
  const direct = r.pairs.find((p) => p.id === 'direct' && p.fixed);
  const ref = r.pairs.find((p) => p.reference && p.fixed && p.saturated);
  /** How much the direct path's own p99 moved between rounds: the noise floor of this run. */
  const directP99s = (direct?.rounds ?? []).map((x) => x.p99).filter(Number.isFinite);
  const noise =
    directP99s.length > 1 ? Math.max(...directP99s) - Math.min(...directP99s) : Number.NaN;
  const added = (p: PairResult, q: 'p50' | 'p90' | 'p99'): number =>
    p.fixed && direct?.fixed ? p.fixed.latency[q] - direct.fixed.latency[q] : Number.NaN;
  const out: string[] = [];

  out.push(
    `Each path below was driven in turn by a load generator in its own process, with ` +
      `${int(r.bodyBytes)}-byte POST bodies and ${int(r.bodyBytes)}-byte answers from an app in ` +
      `its own process; each proxy also ran in its own process, so its CPU time is its own ` +
      `(read from /proc). Trellis is web's ServiceProxy (upstream listener) to api's ServiceProxy ` +
      `(inbound) over mutual TLS with an allow intention, each writing its access log (pino, ` +
      `to /dev/null) and keeping its Prometheus metrics as an agent's proxies do; HAProxy` +
      `${r.haproxyVersion ? ` ${r.haproxyVersion}` : ''} is the same mTLS pair (\`mode http\`, ` +
      `client certificate required and chain verified both ways, \`http-reuse always\`), each ` +
      `with \`nbthread 1\` so that every proxy has one core's worth of threads, as Node's single ` +
      `thread does. Everything shares this machine's ${r.cores} cores. All paths were started ` +
      `first and then measured in ${r.rounds} interleaved rounds (each path once per round), ` +
      `so a stall of the machine hits one round of one path: a row's percentiles and rates are ` +
      `the median over its rounds, its max the highest of any round, and its CPU the total ` +
      `over all rounds' measured windows. Before each measurement the app and the path's ` +
      `proxies are left to go idle (up to 10 s), so a backlog does not carry over.`,
  );

  // ---- fixed rate ----
  const rowsFixed = r.pairs.map((p) => {
    const f = p.fixed;
    const note = status(p);
    if (!f) return [p.label, note || NA, '', '', '', '', '', '', '', '', '', '', ''];
    const isDirect = p === direct;
    return [
      p.label,
      int(f.requests),
      int(f.rate),
      int(f.errors),
      ms(f.latency.p50),
      ms(f.latency.p90),
      ms(f.latency.p99),
      ms(f.latency.max),
      isDirect ? '' : signed(added(p, 'p50')),
      isDirect ? '' : signed(added(p, 'p90')),
      isDirect ? '' : signed(added(p, 'p99')),
      p.proxies ? fixed3(cpuPer1k(f, 'client')) : '',
      p.proxies ? fixed3(cpuPer1k(f, 'server')) : '',
    ];
  });
  out.push(
    `### At ${int(r.rate)} requests/s (open loop)\n\n` +
      `${r.rounds} × ${(r.seconds / r.rounds).toFixed(0)} s measured per path, each after ` +
      `${r.warmupSeconds} s of warm-up, over ${r.connections} ` +
      `keep-alive connections. Latency runs from each request's intended send time to the end ` +
      `of its answer, so a stall counts against every request it delays, and a path that cannot ` +
      `answer ${int(r.rate)} req/s (see Answered/s) queues ever longer. "+" columns are ` +
      `added over the direct path; CPU is CPU seconds per 1,000 requests (which is also vCPU ` +
      `at 1,000 requests/s) of the caller's (client) and callee's (server) proxy.\n\n` +
      table(
        [
          { title: 'Path' },
          { title: 'Requests', align: 'right' },
          { title: 'Answered/s', align: 'right' },
          { title: 'Errors', align: 'right' },
          { title: 'p50 ms', align: 'right' },
          { title: 'p90 ms', align: 'right' },
          { title: 'p99 ms', align: 'right' },
          { title: 'max ms', align: 'right' },
          { title: '+p50', align: 'right' },
          { title: '+p90', align: 'right' },
          { title: '+p99', align: 'right' },
          { title: 'Client proxy CPU s/1k', align: 'right' },
          { title: 'Server proxy CPU s/1k', align: 'right' },
        ],
        rowsFixed,
      ),
  );
  const lags = r.pairs.flatMap((p) => (p.fixed?.sendLag ? [p.fixed.sendLag] : []));
  if (lags.length) {
    const worst = (q: 'p50' | 'p99' | 'max'): number => Math.max(...lags.map((l) => l[q]));
    out.push(
      `The generator wakes on a 1 ms timer, so it sent ${ms(worst('p50'))} ms behind schedule ` +
        `at p50, ${ms(worst('p99'))} ms at p99 and ${ms(worst('max'))} ms at worst (the worst ` +
        `path's figures). That lateness is in every row, direct included, so it cancels out of ` +
        `the added latency.`,
    );
  }

  const spread = r.pairs
    .filter((p) => p.rounds.length > 1)
    .map(
      (p) =>
        `${p.label}: p99 ${p.rounds.map((x) => ms(x.p99)).join(' / ')} ms, saturated ` +
        `${p.rounds.map((x) => int(x.saturatedRate)).join(' / ')} req/s`,
    );
  if (spread.length)
    out.push(`By round (the spread the medians smooth):\n\n- ${spread.join('\n- ')}`);

  // ---- saturation ----
  const refRate = ref?.saturated?.rate ?? Number.NaN;
  const rowsSat = r.pairs.map((p) => {
    const t = p.saturated;
    if (!t) return [p.label, status(p) || NA, '', '', '', '', '', '', '', ''];
    return [
      p.label,
      int(t.rate),
      p === ref || !Number.isFinite(refRate) ? '' : pct((t.rate / refRate) * 100),
      int(t.errors),
      ms(t.latency.p50),
      ms(t.latency.p99),
      p.proxies ? pct(cpuPercent(t, 'client')) : '',
      p.proxies ? pct(cpuPercent(t, 'server')) : '',
      pct(cpuPercent(t, 'app')),
      pct(cpuPercent(t, 'loadgen')),
    ];
  });
  out.push(
    `### At saturation (closed loop)\n\n` +
      `${r.concurrency} requests in flight back to back, ${r.rounds} × ` +
      `${(r.saturationSeconds / r.rounds).toFixed(0)} s per path, each after ` +
      `${r.warmupSeconds} s of warm-up. CPU is in % of one core over the windows. The ` +
      `generator, the app and both proxies share the ${r.cores} cores, so this is the most ` +
      `this machine pushes through each path, not a proxy's limit alone.\n\n` +
      table(
        [
          { title: 'Path' },
          { title: 'Requests/s', align: 'right' },
          { title: `% of ${ref?.label ?? 'reference'}`, align: 'right' },
          { title: 'Errors', align: 'right' },
          { title: 'p50 ms', align: 'right' },
          { title: 'p99 ms', align: 'right' },
          { title: 'Client proxy CPU', align: 'right' },
          { title: 'Server proxy CPU', align: 'right' },
          { title: 'App CPU', align: 'right' },
          { title: 'Generator CPU', align: 'right' },
        ],
        rowsSat,
      ),
  );

  const errorLines = r.pairs.flatMap((p) => {
    const samples = [...(p.fixed?.errorSamples ?? []), ...(p.saturated?.errorSamples ?? [])];
    return samples.length ? [`- ${p.label}: ${[...new Set(samples)].slice(0, 3).join('; ')}`] : [];
  });
  if (errorLines.length) out.push(`Errors seen:\n\n${errorLines.join('\n')}`);

  // ---- agent memory ----
  const rows = [...r.agent.rows].sort((a, b) => a.services - b.services);
  const positive = rows.filter((x) => x.services > 0);
  const lo = positive[0];
  const hi = positive[positive.length - 1];
  const slope = (key: 'rss' | 'rssAfterGc' | 'heapUsed'): number =>
    lo && hi && hi.services > lo.services
      ? (hi[key] - lo[key]) / (hi.services - lo.services)
      : Number.NaN;
  const perService = slope('rss');
  const perServiceGc = slope('rssAfterGc');
  const heapPerService = slope('heapUsed');
  const base = rows.find((x) => x.services === 0);
  let memory =
    `### Agent memory per local service\n\n` +
    `A fresh \`trellis agent\` per row with that many local services in its config dir, each ` +
    `with a sidecar proxy (which the agent runs in its own process); VmRSS once every ` +
    `sidecar's public listener accepted connections and ${(r.agent.settleMs / 1000).toFixed(0)} s ` +
    `more had passed, then again after a forced full GC.\n\n`;
  if (rows.length) {
    memory += table(
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
    if (lo && hi && hi !== lo)
      memory +=
        `\n\nEach extra local service (from ${lo.services} to ${hi.services}) cost ` +
        `${mib(perService)} MiB of VmRSS (${mib(perServiceGc)} MiB after GC; ` +
        `${mib(heapPerService)} MiB of V8 heap). VmRSS moves by several MiB between agents ` +
        `with the heap's growth, so small counts say little; the heap is the steadier figure.`;
  }
  if (r.agent.error) memory += `\n\nThe agent measurement failed: ${r.agent.error}`;
  out.push(memory);

  // ---- goals ----
  const goals: Goal[] = [];
  const refAdded = (q: 'p90' | 'p99'): number => (ref ? added(ref, q) : Number.NaN);
  for (const p of r.pairs.filter((x) => x.trellis)) {
    for (const q of ['p90', 'p99'] as const) {
      const mine = added(p, q);
      const theirs = refAdded(q);
      goals.push({
        goal: `Adds no more than HAProxy at ${int(r.rate)} req/s (${q})`,
        row: p.label,
        target: Number.isFinite(theirs) ? `≤ ${signed(theirs)} ms` : `HAProxy ${NA}`,
        measured: Number.isFinite(mine) ? `${signed(mine)} ms` : NA,
        met: Number.isFinite(mine) && Number.isFinite(theirs) ? mine <= theirs : undefined,
      });
    }
    const c = cpuPer1k(p.fixed, 'client');
    const s = cpuPer1k(p.fixed, 'server');
    goals.push({
      goal: 'CPU per 1,000 req/s, per proxy',
      row: p.label,
      target: `≤ ${GOAL_CPU_PER_1K} vCPU`,
      measured: `client ${fixed3(c)}, server ${fixed3(s)}`,
      met: Number.isFinite(c) && Number.isFinite(s) ? Math.max(c, s) <= GOAL_CPU_PER_1K : undefined,
    });
    const rate = p.saturated?.rate ?? Number.NaN;
    goals.push({
      goal: 'Saturated throughput',
      row: p.label,
      target: `≥ ${Math.round(GOAL_SATURATION_SHARE * 100)}% of HAProxy (${Number.isFinite(refRate) ? int(refRate) : NA} req/s)`,
      measured: Number.isFinite(rate)
        ? `${int(rate)} req/s${Number.isFinite(refRate) ? ` (${pct((rate / refRate) * 100)})` : ''}`
        : NA,
      met:
        Number.isFinite(rate) && Number.isFinite(refRate)
          ? rate >= GOAL_SATURATION_SHARE * refRate
          : undefined,
    });
  }
  goals.push({
    goal: 'Agent memory per extra local service',
    row: 'trellis agent',
    target: '< 2 MB (1.91 MiB)',
    measured: Number.isFinite(perService) ? `${mib(perService)} MiB` : NA,
    met: Number.isFinite(perService) ? perService < GOAL_BYTES_PER_SERVICE : undefined,
  });
  const metCount = goals.filter((g) => g.met === true).length;
  out.push(
    `### Goals\n\n` +
      table(
        [
          { title: 'Goal' },
          { title: 'Row' },
          { title: 'Target' },
          { title: 'Measured' },
          { title: 'Result' },
        ],
        goals.map((g) => [g.goal, g.row, g.target, g.measured, metText(g.met)]),
      ) +
      `\n\n${metCount} of ${goals.length} met.` +
      (Number.isFinite(noise)
        ? ` The direct path's own p99 moved by ${ms(noise)} ms between rounds, so latency ` +
          `differences smaller than that are within this run's noise.`
        : '') +
      ` For scale (published figures, not measured ` +
      `here): Istio's Envoy pair adds +${ENVOY_ADDED_P90} ms at p90 and +${ENVOY_ADDED_P99} ms ` +
      `at p99 at 1,000 req/s; an Envoy sidecar uses about 60 MB and a Linkerd proxy 20-26 MB.`,
  );

  // ---- reading ----
  out.push(
    `### What this shows\n\n${reading(r, direct, ref, added, noise, { perService, heapPerService, baseRss: base?.rss })}`,
  );
  out.push(
    `_The whole benchmark took ${(r.elapsedMs / 1000).toFixed(0)} s. Figures on a shared ` +
      `machine move by tens of percent between runs; compare rows of the same run._`,
  );
  return `${out.join('\n\n')}\n`;
}

function reading(
  r: DataplaneResult,
  direct: PairResult | undefined,
  ref: PairResult | undefined,
  added: (p: PairResult, q: 'p50' | 'p90' | 'p99') => number,
  noise: number,
  memory: { perService: number; heapPerService: number; baseRss: number | undefined },
): string {
  const parts: string[] = [];
  const cpuPair = (p: PairResult): number =>
    cpuPer1k(p.fixed, 'client') + cpuPer1k(p.fixed, 'server');
  const refCpu = ref ? cpuPair(ref) : Number.NaN;
  const refRate = ref?.saturated?.rate ?? Number.NaN;
  const latencyText = (p: PairResult): string => {
    const f = p.fixed!;
    if (!keptUp(f, r.rate))
      return (
        `could not keep up with ${int(r.rate)} req/s (it answered ${int(f.rate)} req/s` +
        `${f.errors ? `, ${int(f.errors)} errors` : ''}), so its latencies ` +
        `(${ms(f.latency.p50)} ms p50, ${ms(f.latency.p99)} ms p99) are mostly time queued`
      );
    return (
      `added ${signed(added(p, 'p50'))} / ${signed(added(p, 'p90'))} / ` +
      `${signed(added(p, 'p99'))} ms (p50/p90/p99)`
    );
  };
  if (direct?.fixed)
    parts.push(
      `Direct, a request took ${ms(direct.fixed.latency.p50)} ms at p50 and ` +
        `${ms(direct.fixed.latency.p99)} ms at p99 at ${int(r.rate)} req/s.`,
    );
  if (ref?.fixed)
    parts.push(
      `${ref.label} ${latencyText(ref)} for ${fixed3(refCpu)} CPU s per 1,000 requests ` +
        `across its two proxies.`,
    );
  for (const p of r.pairs.filter((x) => x.trellis)) {
    if (!p.fixed) {
      parts.push(`${p.label} did not produce figures (${status(p) || 'no data'}).`);
      continue;
    }
    const c = cpuPair(p);
    const d99 = ref ? added(p, 'p99') - added(ref, 'p99') : Number.NaN;
    const cmp =
      !keptUp(p.fixed, r.rate) || !Number.isFinite(d99)
        ? ''
        : Math.abs(d99) < (Number.isFinite(noise) ? noise : 0.02)
          ? `, within this run's noise of HAProxy at p99 (${signed(d99)} ms)`
          : `, ${ms(Math.abs(d99))} ms ${d99 > 0 ? 'more' : 'less'} than HAProxy at p99`;
    let text =
      `${p.label} ${latencyText(p)}${cmp}, and used ${fixed3(c)} CPU s per 1,000 requests ` +
      `across its two proxies` +
      (Number.isFinite(refCpu) && refCpu > 0 ? `, ${(c / refCpu).toFixed(1)}× HAProxy's` : '') +
      '.';
    const sat = p.saturated;
    if (sat) {
      const client = cpuPercent(sat, 'client');
      const server = cpuPercent(sat, 'server');
      const busiest = client >= server ? 'client' : 'server';
      const busiestPct = Math.max(client, server);
      const ours = client + server + cpuPercent(sat, 'app') + cpuPercent(sat, 'loadgen');
      text +=
        ` At saturation it carried ${int(sat.rate)} req/s` +
        (Number.isFinite(refRate) ? `, ${pct((sat.rate / refRate) * 100)} of HAProxy's` : '') +
        (busiestPct >= 90
          ? `; its ${busiest}-side proxy was at ${pct(busiestPct)} of a core, so that one ` +
            `thread was the limit.`
          : `; no proxy was at a full core (busiest ${pct(busiestPct)}) and the generator, ` +
            `app and proxies together used ${pct(ours)} of the machine's ` +
            `${r.cores * 100}%, so the rest went to other processes on this machine or to ` +
            `waiting inside the path.`);
    }
    parts.push(text);
  }
  if (Number.isFinite(memory.perService))
    parts.push(
      `Each extra local service cost the agent ${mib(memory.perService)} MiB of VmRSS` +
        (Number.isFinite(memory.heapPerService)
          ? ` (${mib(memory.heapPerService)} MiB of it V8 heap, the steadiest figure)`
          : '') +
        (memory.baseRss !== undefined
          ? `, on top of ${mib(memory.baseRss)} MiB with no services.`
          : '.'),
    );
  return parts.join(' ');
}
