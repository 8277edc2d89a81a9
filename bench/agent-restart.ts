/**
 * Restarting an agent under load (issue 13, item 3): a real server, an "api" host (one
 * instance, HTTP) and a "web" host calling it through its upstream listener at a steady
 * BENCH_RESTART_RPS (200) requests/s, open loop; the api host's agent is restarted
 * BENCH_RESTART_COUNT (10) times the way `systemctl restart` does it (SIGTERM, then a new
 * process), and every request's outcome is recorded: failed requests (the goal is none) and
 * the longest time without a successful answer. Two layouts in the same run: the package's
 * (proxies in `trellis proxy`, which outlives the agent; plus BENCH_RESTART_UPGRADES (3)
 * upgrade rounds: SIGHUP to the data plane, then the agent), and proxies in the agent (whose
 * SIGTERM drains the host).
 *
 * With one instance the callers have nowhere to move, so this is the cost of a restart for a
 * service with a single instance.
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
  childPids,
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
  /** SIGTERM to exit. */
  stopMs: number;
  /** SIGTERM to the new agent's API answering. */
  downMs: number;
  /** An upgrade's round: the data plane's workers were replaced first (SIGHUP). */
  renewed: boolean;
}

/** One layout's figures. */
export interface LayoutResult {
  layout: 'data-plane' | 'in-agent';
  restarts: RestartRound[];
  requests: number;
  failed: number;
  failures: Record<string, number>;
  longestGapMs: number;
}

export interface AgentRestartResult {
  rps: number;
  drainGraceMs: number;
  layouts: LayoutResult[];
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

async function measure(
  log: (s: string) => void,
  layout: LayoutResult['layout'],
  rps: number,
  count: number,
  upgrades: number,
  drainGraceMs: number,
): Promise<LayoutResult> {
  const tmp = tempDirs();
  const app = new App('api');
  const started: TrellisProcess[] = [];
  let api: TrellisProcess | undefined;
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
    let dataPlane: TrellisProcess | undefined;
    const socket = join(tmp.make('rs-run'), 'data-plane.sock');
    if (layout === 'data-plane') {
      dataPlane = await startTrellis(['proxy', '--socket', socket]);
      started.push(dataPlane);
    }
    const apiArgs = [
      ...agentArgs(server.address, 'rs-api', tmp.make('rs-api'), apiConf),
      '--drain-grace',
      `${drainGraceMs}ms`,
      ...(dataPlane ? ['--data-plane-socket', socket] : []),
    ];
    api = await startTrellis(apiArgs);
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
    log(
      `agent-restart (${layout}): ${rps} req/s through web -> api; ${count} restarts, ${upgrades} upgrades`,
    );
    const load = openLoop(upstream, rps);
    await sleep(2000);
    const restarts: RestartRound[] = [];
    for (let i = 0; i < count + upgrades; i++) {
      const renewed = i >= count && dataPlane !== undefined;
      if (renewed && dataPlane) {
        // What the package's upgrade does: fresh workers first (reload), then the agent.
        const pid = dataPlane.proc.pid!;
        const before = childPids(pid);
        dataPlane.proc.kill('SIGHUP');
        await eventually(
          async () => {
            const now = childPids(pid);
            return now.length === before.length && now.every((c) => !before.includes(c));
          },
          60_000,
          100,
        );
      }
      const t0 = now();
      await api.stop();
      const stopMs = now() - t0;
      api = await startTrellis(apiArgs);
      const downMs = now() - t0;
      restarts.push({ stopMs, downMs, renewed });
      log(
        `agent-restart (${layout}): ${renewed ? 'upgrade' : 'restart'} ${i + 1}: stopped in ${ms(stopMs)}, API back after ${ms(downMs)}`,
      );
      await sleep(3000);
    }
    await load.stop();
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
      layout,
      restarts,
      requests: samples.length,
      failed: samples.filter((s) => !s.ok).length,
      failures,
      longestGapMs,
    };
  } finally {
    // The agent before its data plane: an agent left running would be asked to drain.
    await api?.stop();
    for (const p of started.reverse()) await p.stop();
    app.server?.close();
    tmp.removeAll();
  }
}

export const agentRestart: Benchmark<AgentRestartResult> = {
  name: 'agent-restart',
  title: 'an agent restarted under load',
  async run(log) {
    const rps = envInt('BENCH_RESTART_RPS', 200);
    const count = envInt('BENCH_RESTART_COUNT', 10);
    const upgrades = envInt('BENCH_RESTART_UPGRADES', 3);
    const drainGraceMs = 2000;
    const layouts: LayoutResult[] = [];
    // The package's layout first (trellis proxy + agent), then the agent carrying its proxies.
    layouts.push(await measure(log, 'data-plane', rps, count, upgrades, drainGraceMs));
    layouts.push(await measure(log, 'in-agent', rps, count, 0, drainGraceMs));
    return { rps, drainGraceMs, layouts };
  },
  render(r) {
    const out: string[] = [
      `${int(r.rps)} requests/s (open loop, keep-alive) from a Node client through web's upstream listener to api's single instance, while api's agent is restarted as \`systemctl restart\` does it (SIGTERM, then a new process), in the two layouts, one after the other in the same run:`,
      '',
      "- **data plane** (the package's units): the proxies run in `trellis proxy`, which outlives the agent; SIGTERM ends only the agent. The last rounds are upgrades as the package does them: `trellis proxy` gets SIGHUP (new workers take over its listeners, the old ones drain), then the agent restarts.",
      `- **in the agent** (no \`--data-plane-socket\`): the agent carries its proxies in its own workers; SIGTERM drains the host (a ${seconds(r.drainGraceMs)} s grace), then the new process starts.`,
    ];
    for (const l of r.layouts) {
      const why = Object.entries(l.failures)
        .map(([k, v]) => `${int(v)} × ${k}`)
        .join(', ');
      out.push(
        '',
        `### ${l.layout === 'data-plane' ? 'Data plane in trellis proxy' : 'Proxies in the agent'}`,
        '',
        table(
          [
            { title: 'round', align: 'right' },
            { title: 'what', align: 'left' },
            { title: 'SIGTERM to exit (s)', align: 'right' },
            { title: 'SIGTERM to the new agent answering (s)', align: 'right' },
          ],
          l.restarts.map((x, i) => [
            String(i + 1),
            x.renewed ? 'upgrade: SIGHUP to trellis proxy, then the agent' : 'agent restart',
            seconds(x.stopMs),
            seconds(x.downMs),
          ]),
        ),
        '',
        `**${int(l.failed)} of ${int(l.requests)} requests failed** (goal: none)${why ? `: ${why}` : ''}. Longest time without a successful answer: **${seconds(l.longestGapMs)} s**.`,
      );
    }
    return out.join('\n');
  },
};
