/**
 * A latency probe: one client sends a cheap GET every `everyMs` on its own connection while
 * something else loads the server. Its worst latency shows how long the server's event loop
 * was blocked (by a snapshot, a big query...) regardless of what the load itself was doing.
 */
import { makePool, sendOk } from './http.js';
import { summarize, type LatencySummary } from './stats.js';
import { now, sleep } from './time.js';

export interface Probe {
  /** Ends the probe (idempotent) and summarizes its samples. */
  stop(): Promise<LatencySummary>;
}

export function startProbe(origin: string, path: string, everyMs: number): Probe {
  const pool = makePool(origin, { connections: 1 });
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = now();
      try {
        await sendOk(pool, 'GET', path);
        samples.push(now() - t0);
      } catch {
        // a failed probe is not a latency sample; the load reports errors itself
      }
      await sleep(Math.max(0, everyMs - (now() - t0)));
    }
  })();
  let stopped: Promise<LatencySummary> | null = null;
  return {
    stop() {
      stopped ??= (async () => {
        running = false;
        await loop;
        await pool.close();
        return summarize(samples);
      })();
      return stopped;
    },
  };
}
