/**
 * Runs one Trellis ServiceProxy in a process of its own (so the benchmark can read that proxy's
 * CPU time from /proc), driven only through its public API. Usage:
 *   node proxy-host.js <plan.json> [h2|http1]
 * The second argument says how its HTTP upstreams talk to the other proxy (default h2). Its
 * access log is written, as in production, by pino (to /dev/null here), and it keeps the same
 * Prometheus metrics an agent's proxies do.
 * stdout: `DATAPLANE-READY {"inbound": N, "upstreams": {"api": N}}` once the plan is installed
 * (the ports it got when the plan asked for port 0). SIGTERM stops the proxy and the process.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { systemClock } from '../../src/core/index.js';
import { ServiceProxy, type ProxyPlan } from '../../src/proxy/index.js';
import { createRegistry, proxyMetrics } from '../../src/telemetry/metrics.js';
import { READY_MARK } from './types.js';

async function main(planPath: string, upstreamHttp: 'h2' | 'http1'): Promise<void> {
  const plan = JSON.parse(readFileSync(planPath, 'utf8')) as ProxyPlan;
  const accessLog = pino(pino.destination({ dest: '/dev/null', sync: false }));
  const proxy = new ServiceProxy({
    clock: systemClock,
    log: { info() {}, warn() {} },
    accessLog,
    metrics: proxyMetrics(createRegistry()),
    upstreamHttp,
  });
  process.once('SIGTERM', () => {
    void proxy.stop().finally(() => process.exit(0));
  });
  await proxy.setPlan(plan);
  const upstreams: Record<string, number | undefined> = {};
  for (const u of plan.upstreams) upstreams[u.destination] = proxy.upstreamPort(u.destination);
  process.stdout.write(
    `${READY_MARK} ${JSON.stringify({ inbound: proxy.inboundPort(), upstreams })}\n`,
  );
}

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: proxy-host.js <plan.json>\n');
  process.exitCode = 2;
} else {
  main(path, process.argv[3] === 'http1' ? 'http1' : 'h2').catch((err: unknown) => {
    process.stderr.write(`proxy-host: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
