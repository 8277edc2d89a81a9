/**
 * `trellis proxy`: the host's data-plane supervisor. It owns the sidecar proxies' listening
 * sockets and the worker processes that carry their traffic, and is steered by the agent over
 * a unix socket (proxy/workers/data-plane-server.ts). It outlives the agent, so restarting or
 * upgrading the agent drops no connection; SIGHUP replaces its workers with ones running the
 * code on disk (after a package upgrade), also dropping nothing.
 */
import { systemClock } from '../core/index.js';
import { DataPlaneServer } from '../proxy/workers/data-plane-server.js';
import { ProxyWorkers } from '../proxy/control.js';
import type { Logger } from '../telemetry/logger.js';
import { version } from '../cli/version.js';

export { DataPlaneInUse } from '../proxy/workers/data-plane-server.js';

export interface DataPlaneArgs {
  socketPath: string;
  workers: number;
}

export interface RunningDataPlane {
  server: DataPlaneServer;
  workers: ProxyWorkers;
  /**
   * Stops the host's proxies the way the agent's drain does: the connected agent is asked to
   * drain (catalog first) and exit; proxies still serving afterwards, or all of them when no
   * agent is connected, stop accepting and finish what is open within `timeoutMs`.
   */
  drain(timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

export async function runDataPlane(args: DataPlaneArgs, log: Logger): Promise<RunningDataPlane> {
  const plog = log.child({ component: 'data-plane' });
  const workers = new ProxyWorkers({
    count: Math.max(1, args.workers),
    log: plog,
    logLevel: log.level,
    clock: systemClock,
  });
  const server = new DataPlaneServer({ socketPath: args.socketPath, workers, version, log: plog });
  await server.listen();
  return {
    server,
    workers,
    async drain(timeoutMs) {
      const started = systemClock.now();
      if (server.requestDrain()) {
        // The agent's own drain ends within its --drain-timeout; do not wait past ours.
        let timer: ReturnType<typeof systemClock.setTimeout> | undefined;
        await Promise.race([
          server.agentGone(),
          new Promise<void>((r) => (timer = systemClock.setTimeout(r, timeoutMs))),
        ]);
        if (timer) systemClock.clearTimeout(timer);
      }
      const left = Math.max(0, timeoutMs - (systemClock.now() - started));
      const cut = await Promise.all(
        workers.served().map(({ id }) => workers.handle(id).drain(left)),
      );
      return cut.reduce((a, b) => a + b, 0);
    },
    async close() {
      await server.close();
      await workers.close();
    },
  };
}
