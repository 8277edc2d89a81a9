/**
 * Restarting the agent without dropping anything (issue 13, item 3), with real processes: a
 * server, the api host's data plane (`trellis proxy`) and its agent (`--data-plane-socket`),
 * and a web host calling api's single instance through its upstream listener under a steady
 * load of GETs and POSTs on keep-alive connections.
 *
 *   1. The api agent restarted three times (SIGTERM, a new process): not one request fails,
 *      the same data-plane process serves throughout, and the restarted agent steers it (a
 *      config change after the restart reaches the proxies).
 *   2. SIGHUP to `trellis proxy` replaces its workers (what an upgrade does): none fails.
 *   3. A sidecar removed while the agent was down: its kept proxy stops when the agent returns.
 *   4. A second `trellis proxy` on the same socket is refused; a second agent gets "busy".
 *   5. SIGTERM to `trellis proxy`: the agent drains the host and exits 0, then the proxy.
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { App, failed, load, sleep, type Outcome } from '../helpers/http-load.js';
import { accepts, freePort } from '../helpers/net.js';
import {
  agentArgs,
  childPids,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const describeFailures = (bad: Outcome[]): string =>
  bad
    .slice(0, 10)
    .map((o) => `${o.method} ${o.status} ${o.reason || o.error}`)
    .join('; ');

describe('agent restart: the data plane outlives the agent (real processes)', function () {
  this.timeout(240_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let proxy: TrellisProcess;
  let api: TrellisProcess;
  let web: TrellisProcess;
  let apiArgs: string[] = [];
  let proxyArgs: string[] = [];
  let apiConf = '';
  let upstreamPort = 0;
  let extraPort = 0;
  let base = '';
  const app = new App('api');

  const serving = async (): Promise<boolean> => {
    const r = await request(`http://127.0.0.1:${upstreamPort}/`);
    await r.body.text();
    return r.statusCode === 200;
  };

  before(async () => {
    server = await startServerProcess(tmp.make('ar-srv'), 'srv');
    base = `http://${server.address}`;
    await request(`${base}/v1/config`, {
      method: 'PUT',
      body: JSON.stringify({ Kind: 'service-defaults', Name: 'api', Protocol: 'http' }),
    });
    const socket = join(tmp.make('ar-run'), 'data-plane.sock');
    proxyArgs = ['proxy', '--socket', socket, '--proxy-workers', '1', '--drain-timeout', '10s'];
    proxy = await startTrellis(proxyArgs);
    apiConf = tmp.make('ar-api-conf');
    writeFileSync(
      join(apiConf, 'api.hcl'),
      `service {\n  name = "api"\n  port = ${await app.start()}\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n    }\n  }\n}\n`,
    );
    extraPort = await freePort();
    writeFileSync(
      join(apiConf, 'extra.hcl'),
      `service {\n  name = "extra"\n  port = 1\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${extraPort}\n    }\n  }\n}\n`,
    );
    apiArgs = [
      ...agentArgs(server.address, 'ar-api', tmp.make('ar-api'), apiConf),
      '--data-plane-socket',
      socket,
      '--drain-grace',
      '1s',
    ];
    api = await startTrellis(apiArgs);
    upstreamPort = await freePort();
    const webConf = tmp.make('ar-web-conf');
    writeFileSync(
      join(webConf, 'web.hcl'),
      `service {\n  name = "web"\n  port = 1\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port = ${await freePort()}\n      proxy {\n        upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }]\n      }\n    }\n  }\n}\n`,
    );
    web = await startTrellis(agentArgs(server.address, 'ar-web', tmp.make('ar-web'), webConf));
    await eventually(serving, 60_000, 100);
    await eventually(() => accepts(extraPort), 30_000, 100);
  });

  after(async () => {
    for (const p of [web, api, proxy, server]) await p?.stop();
    app.server?.close();
    tmp.removeAll();
  });

  it('restarting the agent three times under load fails no request; one data plane throughout', async () => {
    const workers = childPids(proxy.proc.pid!);
    expect(workers).to.have.length(1);
    const l = load(upstreamPort, 4, 20);
    await sleep(1000);
    for (let i = 0; i < 3; i++) {
      await api.stop();
      expect(await api.exited).to.equal(0);
      api = await startTrellis(apiArgs);
      await sleep(1000);
    }
    await l.end();
    const bad = l.outcomes.filter(failed);
    expect(l.outcomes.length).to.be.greaterThan(100);
    expect(bad, describeFailures(bad)).to.have.length(0);
    expect(childPids(proxy.proc.pid!)).to.deep.equal(workers);
    // The restarted agent steers the kept proxies: an intention denying web is enforced.
    const deny = await request(`${base}/v1/connect/intentions/exact?source=web&destination=api`, {
      method: 'PUT',
      body: JSON.stringify({ Action: 'deny' }),
    });
    expect(deny.statusCode, await deny.body.text()).to.equal(200);
    await eventually(async () => !(await serving()), 30_000, 100);
    await request(`${base}/v1/connect/intentions/exact?source=web&destination=api`, {
      method: 'DELETE',
    });
    await eventually(serving, 30_000, 100);
  });

  it('SIGHUP to trellis proxy replaces its workers under load; no request fails', async () => {
    const before = childPids(proxy.proc.pid!);
    const l = load(upstreamPort, 4, 20);
    await sleep(1000);
    proxy.proc.kill('SIGHUP');
    await eventually(
      async () => {
        const now = childPids(proxy.proc.pid!);
        return now.length === 1 && now[0] !== before[0];
      },
      30_000,
      100,
    );
    await sleep(1000);
    await l.end();
    const bad = l.outcomes.filter(failed);
    expect(bad, describeFailures(bad)).to.have.length(0);
    expect(await serving()).to.equal(true);
  });

  it('a sidecar removed while the agent was down: its kept proxy stops when the agent returns', async () => {
    await api.stop();
    expect(await accepts(extraPort)).to.equal(true); // kept while no agent runs
    rmSync(join(apiConf, 'extra.hcl'));
    api = await startTrellis(apiArgs);
    await eventually(async () => !(await accepts(extraPort)), 30_000, 100);
    expect(await serving()).to.equal(true);
  });

  it("the agent's metrics include the data plane's requests", async () => {
    expect(await serving()).to.equal(true);
    const r = await request(`http://${api.address}/v1/agent/metrics?format=prometheus`);
    const text = await r.body.text();
    const m = /^trellis_http_requests_total\{[^}]*direction="inbound"[^}]*\} (\d+)/m.exec(text);
    expect(m, text.slice(0, 2000)).to.not.equal(null);
    expect(Number(m![1])).to.be.greaterThan(0);
  });

  it('a data plane that crashed and came back gets every plan again from the agent', async () => {
    await proxy.kill9();
    await eventually(async () => !(await serving()), 30_000, 100);
    // systemd's Restart=on-failure, by hand: the stale socket file is replaced.
    proxy = await startTrellis(proxyArgs);
    await eventually(serving, 30_000, 100);
  });

  it('a second trellis proxy on the socket is refused, and so is a second agent', async () => {
    const second = await startTrellis(proxyArgs).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(second).to.contain('another trellis proxy already serves');
    const other = await startTrellis(
      [
        ...agentArgs(server.address, 'ar-api-2', tmp.make('ar-api-2'), tmp.make('ar-api-2-conf')),
        '--data-plane-socket',
        apiArgs[apiArgs.indexOf('--data-plane-socket') + 1]!,
      ],
      { timeoutMs: 30_000 },
    ).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(other).to.contain('another agent is connected');
  });

  it('SIGTERM to trellis proxy: the agent drains the host and exits, then the proxy', async () => {
    const l = load(upstreamPort, 2, 50);
    await sleep(500);
    await proxy.stop();
    expect(await proxy.exited).to.equal(0);
    expect(await api.exited).to.equal(0);
    await l.end();
    expect(api.output()).to.not.contain('"level":50');
    // The host left the catalog: web has nowhere to send api's requests.
    await eventually(async () => !(await serving()), 30_000, 100);
  });
});
