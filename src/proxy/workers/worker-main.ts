/**
 * A proxy worker: one of the agent's processes that carry its sidecars' traffic. It runs a
 * ServiceProxy per sidecar, on the plans the agent sends, listening on sockets shared with the
 * other workers (node:cluster, each worker accepting from the same socket), and reports its
 * request metrics and the local applications it could not reach. It writes its own access log
 * and proxy log lines to the agent's stderr.
 *
 * Started by ProxyWorkers (proxy-workers.ts) through node:cluster; exits when the agent goes.
 */
import { systemClock } from '../../core/index.js';
import { createRegistry, proxyMetrics } from '../../telemetry/metrics.js';
import { accessLogFor } from '../../telemetry/access-log.js';
import { createLogger } from '../../telemetry/logger.js';
import { planFailure } from './proxy-workers.js';
import { ServiceProxy } from '../service-proxy.js';
import type { FromWorker, ToWorker } from './protocol.js';

// The agent passes its log level as the one argument.
const level = process.argv[2] ?? 'info';
const log = createLogger({ level }).child({ component: 'proxy', worker: process.pid });
const registry = createRegistry();
const metrics = proxyMetrics(registry);
const proxies = new Map<string, ServiceProxy>();

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

function proxyFor(id: string): ServiceProxy {
  let p = proxies.get(id);
  if (!p) {
    p = new ServiceProxy({
      clock: systemClock,
      log,
      // Only plans that enable it log requests (the agent's plans always say).
      accessLog: false,
      accessLogTo: (target) =>
        accessLogFor(target, (err, path) =>
          log.warn(
            { path, err: err.message },
            'access log cannot be written; its lines are dropped',
          ),
        ),
      metrics,
      onLocalAppUnreachable: () => send({ t: 'appDown', id }),
    });
    proxies.set(id, p);
  }
  return p;
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.t) {
    case 'plan': {
      const p = proxyFor(m.id);
      try {
        await p.setPlan(m.plan);
        send({ t: 'done', seq: m.seq, served: p.plan ?? null });
      } catch (err) {
        send({ t: 'done', seq: m.seq, served: p.plan ?? null, error: planFailure(err) });
      }
      return;
    }
    case 'stop': {
      const p = proxies.get(m.id);
      proxies.delete(m.id);
      await p?.stop();
      send({ t: 'done', seq: m.seq, served: null });
      return;
    }
    case 'drain': {
      const p = proxies.get(m.id);
      proxies.delete(m.id);
      send({ t: 'drained', seq: m.seq, cut: (await p?.drain(m.timeoutMs)) ?? 0 });
      return;
    }
    case 'metrics':
      send({ t: 'metrics', seq: m.seq, json: await registry.getMetricsAsJSON() });
      return;
  }
}

process.on('message', (m: ToWorker) => {
  handle(m).catch((err: unknown) => log.warn({ err: String(err) }, 'proxy worker message failed'));
});
// The agent went away: so does its data plane (the listening sockets are the agent's).
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
