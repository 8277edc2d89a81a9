/**
 * Restarting an agent under load (issue 13, item 3): a real server, an "api" host (one
 * instance, HTTP) and a "web" host calling it through its upstream listener at a steady
 * BENCH_RESTART_RPS (200) requests/s, open loop; the api host's agent is restarted
 * BENCH_RESTART_COUNT (10) times the way `systemctl restart` does it (SIGTERM, which drains,
 * then a new process), and every request's outcome is recorded: failed requests (the goal is
 * none) and the longest time without a successful answer.
 *
 * With one instance the callers have nowhere to move during the drain, so what this measures
 * is the cost of a restart for a service with a single instance.
 */
import { writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { Benchmark } from './lib/benchmark.js';
import { envInt } from './lib/config.js';
import { int, ms, seconds, table } from './lib/format.js';
import { now, sleep } from './lib/time.js';
import { App } from '../test/helpers/http-load.js';
import { freePort } from '../test/helpers/net.js';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../test/helpers/trellis-process.js';

interface Sample {
  at: number;
  ended: number;
  ok: boolean;
  why: string;
}

export interface RestartRound {
  /** SIGTERM to exit (the drain). */
  stopMs: number;
  /** SIGTERM to the new agent's API answering. */
  downMs: number;
}

export interface AgentRestartResult {
  rps: number;
  restarts: RestartRound[];
  requests: number;
  failed: number;
  failures: Record<string, number>;
  longestGapMs: number;
  drainGraceMs: number;
}

/** Open-loop GETs to `port` at `rps` until stopped. */
function openLoop(port: number, rps: number): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const pending = new Set<Promise<void>>();
  const one = (): void => {
    const at = now();
    const p = new Promise<void>((resolve) => {
      const done = (ok: boolean, why: string): void => {
        samples.push({ at, ended: now(), ok, why });
        resolve();
      };
      const r = httpRequest(
        { host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode === 200, `HTTP ${res.statusCode}`));
          res.on('error', (e) => done(false, e.message));
        },
      );
      r.on('timeout', () => r.destroy(new Error('timeout')));
      r.on('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
      r.end();
    });
    pending.add(p);
    void p.then(() => pending.delete(p));
  };
  const timer = setInterval(one, 1000 / rps);
  return {
    samples,
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      agent.destroy();
    },
  };
}

export const agentRestart: Benchmark<AgentRestartResult> = {
  name: 'agent-restart',
  title: 'an agent restarted under load',
  async run(log) {
    const rps = envInt('BENCH_RESTART_RPS', 200);
    const count = envInt('BENCH_RESTART_COUNT', 10);
    const drainGraceMs = 2000;
    const tmp = tempDirs();
    const app = new App('api');
    const started: TrellisProcess[] = [];
    try {
      const server = await startServerProcess(tmp.make('rs-srv'), 'srv');
      started.push(server);
      const base = `http://${server.address}`;
      await fetch(`${base}/v1/config`, {
        method: 'PUT',
        body: JSON.stringify({ Kind: 'service-defaults', Name: 'api', Protocol: 'http' }),
      }).then((r) => r.text());
      const apiConf = tmp.make('rs-api-conf');
      writeFileSync(
        join(apiConf, 'api.hcl'),
        `service {\n  name = "api"\n  port = ${await app.start()}\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n    }\n  }\n}\n`,
      );
      const upstream = await freePort();
      const webConf = tmp.make('rs-web-conf');
      writeFileSync(
        join(webConf, 'web.hcl'),
        `service {\n  name = "web"\n  port = 1\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n      proxy {\n        upstreams = [{ destination_name = "api", local_bind_port = ${upstream} }]\n      }\n    }\n  }\n}\n`,
      );
      const apiArgs = [
        ...agentArgs(server.address, 'rs-api', tmp.make('rs-api'), apiConf),
        '--drain-grace',
        `${drainGraceMs}ms`,
      ];
      let api = await startTrellis(apiArgs);
      const web = await startTrellis(
        agentArgs(server.address, 'rs-web', tmp.make('rs-web'), webConf),
      );
      started.push(web);
      const serving = async (): Promise<boolean> => {
        const r = await fetch(`http://127.0.0.1:${upstream}/`);
        await r.text();
        return r.status === 200;
      };
      await eventually(serving, 60_000, 100);
      log(`agent-restart: ${rps} req/s through web -> api; restarting api's agent ${count} times`);
      const load = openLoop(upstream, rps);
      await sleep(2000);
      const restarts: RestartRound[] = [];
      for (let i = 0; i < count; i++) {
        const t0 = now();
        await api.stop();
        const stopMs = now() - t0;
        api = await startTrellis(apiArgs);
        const downMs = now() - t0;
        restarts.push({ stopMs, downMs });
        log(
          `agent-restart: restart ${i + 1}: drained in ${ms(stopMs)}, API back after ${ms(downMs)}`,
        );
        await sleep(3000);
      }
      await load.stop();
      started.push(api);
      const samples = load.samples;
      const failures: Record<string, number> = {};
      for (const s of samples) if (!s.ok) failures[s.why] = (failures[s.why] ?? 0) + 1;
      const oks = samples
        .filter((s) => s.ok)
        .map((s) => s.ended)
        .sort((a, b) => a - b);
      let longestGapMs = 0;
      for (let k = 1; k < oks.length; k++)
        longestGapMs = Math.max(longestGapMs, oks[k]! - oks[k - 1]!);
      return {
        rps,
        restarts,
        requests: samples.length,
        failed: samples.filter((s) => !s.ok).length,
        failures,
        longestGapMs,
        drainGraceMs,
      };
    } finally {
      for (const p of started.reverse()) await p.stop();
      app.server?.close();
      tmp.removeAll();
    }
  },
  render(r) {
    const rows = r.restarts.map((x, i) => [String(i + 1), seconds(x.stopMs), seconds(x.downMs)]);
    const why = Object.entries(r.failures)
      .map(([k, v]) => `${int(v)} × ${k}`)
      .join(', ');
    return [
      `${int(r.rps)} requests/s (open loop, keep-alive) from a Node client through web's upstream listener to api's single instance; api's agent restarted ${r.restarts.length} times as \`systemctl restart\` does it: SIGTERM (a drain with a ${seconds(r.drainGraceMs)} s grace), then a new process. Proxies in worker processes (the default).`,
      '',
      table(
        [
          { title: 'restart', align: 'right' },
          { title: 'SIGTERM to exit: the drain (s)', align: 'right' },
          { title: 'SIGTERM to the new agent answering (s)', align: 'right' },
        ],
        rows,
      ),
      '',
      `**${int(r.failed)} of ${int(r.requests)} requests failed** (goal: none)${why ? `: ${why}` : ''}. Longest time without a successful answer: **${seconds(r.longestGapMs)} s**.`,
      ...(r.failed > 0
        ? [
            '',
            'With one instance, callers have no other endpoint to move to while the host drains, and the sidecar refuses new connections from the end of the drain until the new agent serves the saved plan again: that window is what fails. Handing the listening sockets to the new process (or keeping the proxy workers running across the restart) is what would close it; it is not built yet.',
          ]
        : []),
    ].join('\n');
  },
};
