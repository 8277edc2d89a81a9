/**
 * The data-plane report's goals table (issue 12) is computed from the figures: these rows are
 * built so that each goal lands on a known side of its floor and goal, and the table must say
 * so; a slip in a ratio, a per-proxy division or a comparison shows here.
 */
import { expect } from 'chai';
import { PROXY_KEY } from '../../../bench/dataplane/pairs.js';
import { renderDataplane } from '../../../bench/dataplane/render.js';
import type { DataplaneResult, Measurement, PairResult } from '../../../bench/dataplane/types.js';

function m(rate: number, p50 = Number.NaN, p99 = Number.NaN, proxyCpuMs = 0): Measurement {
  return {
    tool: 'wrk',
    rate,
    requests: rate,
    errors: 0,
    errorNotes: [],
    ...(Number.isFinite(p50) ? { latency: { p50, p90: p50, p99, max: p99 } } : {}),
    windowMs: 1000,
    windowRequests: rate,
    cpuMs: { generator: 300, app: 200, [`${PROXY_KEY}x`]: proxyCpuMs },
  };
}

function row(id: string, http: 'h1' | 'h2', figures: PairResult['figures']): PairResult {
  return {
    id,
    label: id,
    http,
    trellis: id.startsWith('trellis'),
    proxies: id.includes('direct') ? 0 : 2,
    figures,
    rounds: [],
  };
}

function result(): DataplaneResult {
  return {
    quick: false,
    rounds: 1,
    seconds: 1,
    warmupSeconds: 0,
    bodyBytes: 1024,
    rate: 1000,
    connections: 32,
    saturationConnections: 16,
    latencyConnections: 2,
    wrkThreads: 1,
    h2Streams: 10,
    cores: 2,
    versions: { wrk: '4.1.0', h2load: '1.52.0', nginx: '1.22.1', haproxy: '2.6.12' },
    app: 'nginx',
    upstreamHttp: undefined,
    h2Baseline: undefined,
    rssBaselineMib: 99,
    pairs: [
      row('direct', 'h1', {
        saturated: m(40000),
        latency2: m(20000, 0.05, 0.2),
        fixed: m(1000, 1, 5),
      }),
      // HAProxy adds +0.2/+1.0 ms at 2 connections and +0.3/+1.0 ms at 1,000 req/s.
      row('haproxy-1', 'h1', {
        saturated: m(10000, NaN, NaN, 500),
        latency2: m(4000, 0.25, 1.2),
        fixed: m(1000, 1.3, 6, 100),
      }),
      row('haproxy-2', 'h1', { saturated: m(14000, NaN, NaN, 700) }),
      row('trellis-tcp', 'h1', {
        saturated: m(6500, NaN, NaN, 600),
        latency2: m(3000, 0.3, 1.3),
        fixed: m(1000, 1.2, 5.5, 100),
      }),
      // http: 0.6× HAProxy; 200 CPU ms over 1,000 requests and 2 proxies = 0.1 s per 1,000.
      row('trellis-http', 'h1', {
        saturated: m(6000, NaN, NaN, 1200),
        latency2: m(2000, 0.5, 1.5),
        fixed: m(1000, 1.4, 6.5, 200),
      }),
      { ...row('trellis-http-workers', 'h1', {}), skipped: 'not implemented' },
      row('h2-direct', 'h2', { saturated: m(30000) }),
      row('h2-haproxy-1', 'h2', { saturated: m(10000, NaN, NaN, 500) }),
      row('trellis-grpc', 'h2', { saturated: m(8000, NaN, NaN, 900) }),
    ],
    agent: {
      rows: [{ services: 0, rss: 50 * 1024 * 1024, rssAfterGc: 0, heapUsed: 0, readyMs: 1000 }],
      settleMs: 1000,
    },
    notes: [],
    elapsedMs: 1000,
  };
}

/** The Met? cell of the goals row whose figure starts with `figure`. */
function met(markdown: string, figure: string): string {
  const line = markdown.split('\n').find((l) => l.startsWith(`| ${figure}`));
  if (!line) throw new Error(`no goals row "${figure}"`);
  const cells = line.split(' | ');
  return cells[cells.length - 1]!.replace(/ \|$/, '');
}

describe('bench dataplane: goals table', () => {
  const md = renderDataplane(result());

  it('judges the throughput ratios against their floors and goals', () => {
    expect(met(md, 'HTTP/1.1 pair, saturated req/s vs HAProxy')).to.equal('floor met, goal not');
    expect(md).to.include('0.60× (6,000 vs 10,000 req/s)');
    expect(met(md, 'HTTP/1.1 vs Trellis’s own TCP path')).to.equal('floor met, goal not');
    expect(met(md, 'TCP pair vs HAProxy')).to.equal('floor NOT met');
  });

  it('divides a pair’s CPU by its two proxies', () => {
    expect(md).to.include('| 0.100 (saturated: 0.100;');
    expect(met(md, 'CPU s per 1,000 requests')).to.equal('goal met');
  });

  it('compares added latency with HAProxy’s, p50 within 0.2 ms and p99 within 1 ms', () => {
    // At 2 connections http adds +0.45 ms p50 against HAProxy's +0.2: more than 0.2 ms over.
    expect(met(md, 'Added p50 / p99 over direct at 2 connections')).to.equal('floor NOT met');
    // At 1,000 req/s +0.4/+1.5 against +0.3/+1.0: within the floor, above the goal.
    expect(met(md, 'Added p50 / p99 over direct at 1,000 req/s')).to.equal('floor met, goal not');
  });

  it('reports HTTP/2 against HAProxy h2 and leaves the missing floors unmeasured', () => {
    expect(met(md, 'gRPC / HTTP/2 pair')).to.equal('goal met');
    expect(met(md, 'Data plane with workers')).to.equal('not measured');
    expect(met(md, 'Agent RSS with no services')).to.equal('goal met');
  });

  it('says whether the generator and the app were saturated', () => {
    expect(md).to.include('wrk stayed below 90% of a core on every proxied row (at most 30%)');
    // No process of these paths is near a full core: the table must not blame the proxies.
    expect(md).to.include('no process of the path reached 90% of a core');
  });
});
