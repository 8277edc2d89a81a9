/**
 * Draining a host (real server, three real agents): "api" runs on two hosts, "web" on a third
 * calls it through its upstream listener under a steady load of GETs and POSTs.
 *
 *   1. `trellis agent drain` on one api host: the host goes critical in the catalog, web's
 *      proxy moves its traffic to the other host during the grace, requests in flight on the
 *      drained host (slow ones, still inside the app) finish, and the agent exits 0. Not one
 *      request fails. Restarted, the host serves again (the drain's maintenance is cleared).
 *   2. SIGTERM (systemd's stop) drains the same way: again not one request fails, where a
 *      plain stop may fail the requests in flight (mesh-failover.test.ts).
 * The first drains proxies running in worker processes (the default), the second proxies in the
 * agent's own process (--proxy-workers 0).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { App, SLOW_MS, failed, load, sleep, type Outcome } from '../helpers/http-load.js';
import { freePort } from '../helpers/net.js';
import {
  TRELLIS_BIN,
  agentArgs as agentCommand,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

function note(text: string): void {
  if (process.env.TRELLIS_E2E_VERBOSE) console.log(`      [drain] ${text}`);
}

const describeFailures = (bad: Outcome[], t0: number): string =>
  bad.map((o) => `${o.method} ${o.status} ${o.reason || o.error} at +${o.at - t0}ms`).join('; ');

describe('agent drain: a host leaves without failing a request (real agents)', function () {
  this.timeout(180_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  const agents = new Map<string, TrellisProcess>();
  const agentArgs = new Map<string, string[]>();
  const apps = [new App('one'), new App('two')];
  let upstreamPort = 0;
  let base = '';

  const healthyApi = async (): Promise<string[]> => {
    const r = await request(`${base}/v1/health/connect/api?passing=1`);
    const entries = (await r.body.json()) as { Node: { Node: string } }[];
    return entries.map((e) => e.Node.Node).sort();
  };

  /** A slow GET through web's upstream: still inside an app when a drain begins. */
  const slow = async (): Promise<{ status: number; body: string }> => {
    const r = await request(`http://127.0.0.1:${upstreamPort}/slow`);
    return { status: r.statusCode, body: await r.body.text() };
  };

  /** Both api hosts serve through web's upstream. */
  const bothServe = async (): Promise<void> => {
    const seen = new Set<string>();
    await eventually(
      async () => {
        const r = await request(`http://127.0.0.1:${upstreamPort}/`);
        const b = await r.body.text();
        if (r.statusCode === 200) seen.add(b.split(' ')[0]!);
        return seen.size === 2;
      },
      60_000,
      100,
    );
  };

  before(async () => {
    server = await startServerProcess(tmp.make('dr-srv'), 'srv');
    base = `http://${server.address}`;
    await request(`${base}/v1/config`, {
      method: 'PUT',
      body: JSON.stringify({ Kind: 'service-defaults', Name: 'api', Protocol: 'http' }),
    });
    upstreamPort = await freePort();
    for (const [i, app] of apps.entries()) {
      const conf = tmp.make(`dr-api${i + 1}-conf`);
      writeFileSync(
        join(conf, 'api.hcl'),
        `service {\n  name = "api"\n  port = ${await app.start()}\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n    }\n  }\n}\n`,
      );
      agentArgs.set(`host-api${i + 1}`, [
        ...agentCommand(server.address, `host-api${i + 1}`, tmp.make(`dr-api${i + 1}`), conf),
        '--drain-grace',
        '2s',
      ]);
    }
    const webConf = tmp.make('dr-web-conf');
    writeFileSync(
      join(webConf, 'web.hcl'),
      `service {\n  name = "web"\n  port = 1\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n      proxy {\n        upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }]\n      }\n    }\n  }\n}\n`,
    );
    agentArgs.set(
      'host-web',
      agentCommand(server.address, 'host-web', tmp.make('dr-web'), webConf),
    );
    for (const [node, args] of agentArgs) agents.set(node, await startTrellis(args));
    await bothServe();
  });

  after(async () => {
    for (const a of agents.values()) await a.stop();
    await server?.stop();
    for (const a of apps) a.server?.close();
    tmp.removeAll();
  });

  it('trellis agent drain: callers move away, requests in flight finish, the agent exits 0', async () => {
    const host = agents.get('host-api1')!;
    const l = load(upstreamPort, 4, 100);
    await sleep(1500);
    // Slow requests land on both hosts (round robin): some are inside host 1's app.
    const inFlight = Array.from({ length: 4 }, () => slow());
    await sleep(SLOW_MS / 3);
    const t0 = Date.now();
    // Run asynchronously: the load and the slow requests go on in this process meanwhile.
    const drain = await new Promise<{ status: number | null; stdout: string; stderr: string }>(
      (resolve) =>
        execFile(
          process.execPath,
          [TRELLIS_BIN, 'agent', 'drain', '--http-addr', host.address, '--timeout', '20s'],
          { encoding: 'utf8', timeout: 60_000 },
          (err, stdout, stderr) =>
            resolve({ status: err ? ((err.code as number | undefined) ?? 1) : 0, stdout, stderr }),
        ),
    );
    const tookMs = Date.now() - t0;
    expect(drain.status, drain.stderr).to.equal(0);
    expect(drain.stdout).to.contain('The catalog marked this host critical');
    expect(drain.stdout, drain.stdout + host.output()).to.contain('Every open connection finished');
    expect(await host.exited).to.equal(0);
    const slowOnes = await Promise.all(inFlight);
    await sleep(1000);
    await l.end();
    const bad = l.outcomes.filter(failed);
    note(
      `drain took ${tookMs} ms; ${l.outcomes.length} requests, ${bad.length} failed (${describeFailures(bad, t0)}); ` +
        `slow ones: ${slowOnes.map((s) => `${s.status} ${s.body}`).join(', ')}`,
    );
    expect(slowOnes.map((s) => s.status)).to.deep.equal([200, 200, 200, 200]);
    expect(slowOnes.some((s) => s.body.startsWith('one'))).to.equal(true);
    expect(bad, describeFailures(bad, t0)).to.deep.equal([]);
    // Traffic went on, to the other host, while and after host 1 drained.
    expect(l.outcomes.filter((o) => o.at > t0 + tookMs).length).to.be.above(0);
    expect(await healthyApi()).to.deep.equal(['host-api2']);

    // Restarted, the host serves again: the drain's maintenance mark is gone. This time its
    // proxies run in the agent's own process, so the next test drains that path too.
    agents.set(
      'host-api1',
      await startTrellis([...agentArgs.get('host-api1')!, '--proxy-workers', '0']),
    );
    await eventually(
      async () => (await healthyApi()).join() === 'host-api1,host-api2',
      30_000,
      200,
    );
    await bothServe();
  });

  it('SIGTERM drains the same way: not one request fails', async () => {
    const l = load(upstreamPort, 4, 100);
    await sleep(1500);
    const inFlight = Array.from({ length: 4 }, () => slow());
    await sleep(SLOW_MS / 3);
    const t0 = Date.now();
    const host = agents.get('host-api1')!;
    await host.stop(); // SIGTERM, and waits for the exit
    const stoppedAfter = Date.now() - t0;
    expect(await host.exited).to.equal(0);
    const slowOnes = await Promise.all(inFlight);
    await sleep(1000);
    await l.end();
    const bad = l.outcomes.filter(failed);
    note(
      `SIGTERM: stopped after ${stoppedAfter} ms; ${l.outcomes.length} requests, ${bad.length} failed (${describeFailures(bad, t0)})`,
    );
    expect(slowOnes.map((s) => s.status)).to.deep.equal([200, 200, 200, 200]);
    expect(bad, describeFailures(bad, t0)).to.deep.equal([]);
    // It drained (the grace) rather than stopping at once.
    expect(stoppedAfter).to.be.at.least(2000);
    agents.delete('host-api1');
  });
});
