/**
 * Runs BOTH ServiceProxies of a Trellis pair in one process, as a dev agent (`trellis dev`)
 * holds every local proxy in one process, driven only through the public ServiceProxy API.
 * The benchmark reads this process's CPU time from /proc and divides it by two for the cost
 * per proxy. Usage:
 *   node proxy-host.js <job.json>
 * where the job (pairs.ts HostJob) holds the plans to install, in order (the callee's first, so
 * its inbound listens before the caller's upstream can reach it), and optionally
 * `upstreamHttp` (how HTTP upstreams talk to the other proxy; unset: ServiceProxy's default;
 * BENCH_DATAPLANE_UPSTREAM_HTTP=h2|http1 sets it) and `workers` (hook for the later proxy
 * workers row: refused unless 1 until workers exist).
 * Each proxy writes its access log when its plan enables it, as an agent does (batched,
 * asynchronous, to stderr), and keeps the same Prometheus metrics an agent's proxies do.
 * stdout: `DATAPLANE-READY {"upstreams": [{...}, {"api": N}]}` once every plan is installed.
 * SIGTERM stops the proxies and the process.
 */
import { readFileSync } from 'node:fs';
import { systemClock } from '../../src/core/index.js';
import { ProxyWorkers, ServiceProxy } from '../../src/proxy/index.js';
import { createAccessLogger } from '../../src/telemetry/access-log.js';
import { createRegistry, proxyMetrics } from '../../src/telemetry/metrics.js';
import type { HostJob, HostReady } from './pairs.js';
import { READY_MARK } from './types.js';

async function main(jobPath: string): Promise<void> {
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as HostJob;
  if (job.workers !== undefined && job.workers > 0) return inWorkers(job, job.workers);
  // As an agent writes it: batched, asynchronous, to stderr (which the benchmark drains).
  const accessLog = createAccessLogger('info');
  const registry = createRegistry();
  const metrics = proxyMetrics(registry);
  const proxies = job.plans.map(
    () =>
      new ServiceProxy({
        clock: systemClock,
        log: { info() {}, warn() {} },
        accessLog,
        // A plan that enables its access log (the rows that want one) writes it here too.
        accessLogTo: () => accessLog,
        metrics,
        ...(job.upstreamHttp ? { upstreamHttp: job.upstreamHttp } : {}),
      }),
  );
  process.once('SIGTERM', () => {
    void Promise.all(proxies.map((p) => p.stop())).finally(() => process.exit(0));
  });
  const ready: HostReady = { upstreams: [] };
  for (const [i, plan] of job.plans.entries()) {
    const proxy = proxies[i]!;
    await proxy.setPlan(plan);
    const ports: Record<string, number> = {};
    for (const u of plan.upstreams) {
      const port = proxy.upstreamPort(u.destination);
      if (port !== undefined) ports[u.destination] = port;
    }
    ready.upstreams.push(ports);
  }
  process.stdout.write(`${READY_MARK} ${JSON.stringify(ready)}\n`);
}

/** The pair in `count` proxy workers, as an agent with `proxy_workers = count` runs them. */
async function inWorkers(job: HostJob, count: number): Promise<void> {
  const quiet = { info() {}, warn() {} };
  const workers = new ProxyWorkers({ count, log: quiet, logLevel: 'info', clock: systemClock });
  process.once('SIGTERM', () => {
    void workers.close().finally(() => process.exit(0));
  });
  const ready: HostReady = { upstreams: [] };
  for (const [i, plan] of job.plans.entries()) {
    await workers.handle(`p${i}`).setPlan(plan);
    ready.upstreams.push(
      Object.fromEntries(plan.upstreams.map((u) => [u.destination, u.bindPort])),
    );
  }
  ready.workerPids = workers.pids();
  process.stdout.write(`${READY_MARK} ${JSON.stringify(ready)}\n`);
}

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: proxy-host.js <job.json>\n');
  process.exitCode = 2;
} else {
  main(path).catch((err: unknown) => {
    process.stderr.write(`proxy-host: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
