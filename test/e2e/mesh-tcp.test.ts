/**
 * Two agents, each running the proxy of its host's service: web's agent listens on web's
 * upstream port for api, api's agent fronts api's app (a TCP echo server). Bytes from a
 * client of web's upstream reach api's app through both proxies over mutual TLS, intentions
 * decide, and the sidecar's listening check tells whether its proxy can serve.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
  agentArgs as agentCommand,
} from '../helpers/trellis-process.js';
import { freePort, tcpRoundTrip as roundTrip } from '../helpers/net.js';

describe('mesh: TCP through two agents and their proxies', function () {
  this.timeout(90_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  const agents: TrellisProcess[] = [];
  let app: Server;
  let appConnections = 0;
  let upstreamPort = 0;
  const agentArgs: string[][] = [];

  before(async () => {
    app = createServer((s) => {
      appConnections++;
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    const appPort = (app.address() as { port: number }).port;
    server = await startServerProcess(tmp.make('mesh-srv'), 'srv');
    const [apiSidecar, webSidecar] = [await freePort(), await freePort()];
    upstreamPort = await freePort();

    const apiConf = tmp.make('mesh-api-conf');
    writeFileSync(
      join(apiConf, 'api.hcl'),
      `service {
  name = "api"
  port = ${appPort}
  connect {
    sidecar_service {
      address = "127.0.0.1"
      port    = ${apiSidecar}
    }
  }
}
`,
    );
    const webConf = tmp.make('mesh-web-conf');
    writeFileSync(
      join(webConf, 'web.hcl'),
      `service {
  name = "web"
  port = 1
  connect {
    sidecar_service {
      address = "127.0.0.1"
      port    = ${webSidecar}
      proxy {
        upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }]
      }
    }
  }
}
`,
    );
    for (const [node, conf] of [
      ['host-api', apiConf],
      ['host-web', webConf],
    ] as const) {
      agentArgs.push(agentCommand(server.address, node, tmp.make(`mesh-${node}`), conf));
    }
    for (const args of agentArgs) agents.push(await startTrellis(args));
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    app.close();
    tmp.removeAll();
  });

  it('carries bytes from web to api through both proxies', async () => {
    await eventually(
      async () => (await roundTrip(upstreamPort, 'hello mesh')) === 'hello mesh',
      30_000,
      200,
    );
  });

  it("marks the sidecars' listening checks passing once their proxies serve", async () => {
    await eventually(async () => {
      const r = await request(`http://${server.address}/v1/health/checks/api-sidecar-proxy`);
      const checks = (await r.body.json()) as { Name: string; Status: string }[];
      return checks.some((c) => c.Name === 'Connect Sidecar Listening' && c.Status === 'passing');
    }, 20_000);
  });

  it('follows intentions: a deny refuses new connections and closes open ones, an allow restores', async () => {
    const open = connect({ host: '127.0.0.1', port: upstreamPort });
    open.on('error', () => {});
    const echoed = new Promise<string>((r) => open.once('data', (d) => r(d.toString())));
    open.write('first');
    expect(await echoed).to.equal('first');
    const closed = new Promise<void>((r) => open.once('close', () => r()));

    const put = await request(
      `http://${server.address}/v1/connect/intentions/exact?source=web&destination=api`,
      { method: 'PUT', body: JSON.stringify({ Action: 'deny' }) },
    );
    expect(put.statusCode).to.equal(200);
    await put.body.text();
    await closed;
    const before = appConnections;
    await eventually(async () => (await roundTrip(upstreamPort, 'denied?')) === '', 10_000, 100);
    expect(appConnections).to.equal(before);

    const allow = await request(
      `http://${server.address}/v1/connect/intentions/exact?source=web&destination=api`,
      { method: 'PUT', body: JSON.stringify({ Action: 'allow' }) },
    );
    await allow.body.text();
    await eventually(async () => (await roundTrip(upstreamPort, 'back')) === 'back', 10_000, 100);
  });

  it('counts connections, bytes and refusals in Prometheus metrics on each agent', async () => {
    const scrape = async (agent: TrellisProcess): Promise<string> => {
      const r = await request(`http://${agent.address}/v1/agent/metrics?format=prometheus`);
      expect(r.statusCode).to.equal(200);
      return r.body.text();
    };
    const value = (text: string, line: RegExp): number => {
      const m = text.split('\n').find((l) => line.test(l));
      return m ? Number(m.split(' ').pop()) : 0;
    };
    const web = await scrape(agents[1]!);
    expect(
      value(
        web,
        /^trellis_tcp_connections_opened_total\{direction="outbound",source_service="web",destination_service="api"\}/,
      ),
    ).to.be.at.least(3);
    expect(
      value(
        web,
        /^trellis_tcp_bytes_total\{.*source_service="web",destination_service="api",flow="rx"\}/,
      ),
    ).to.be.at.least('hello mesh'.length);
    const api = await scrape(agents[0]!);
    // The deny earlier was counted where it was decided: at api's inbound listener.
    expect(
      value(
        api,
        /^trellis_tcp_connections_closed_total\{direction="inbound",source_service="web",destination_service="api",response_flags="UAEX"\}/,
      ),
    ).to.be.at.least(1);
  });

  it('fails static: agents restarted while every server is down serve their saved plans', async () => {
    await server.stop();
    for (const a of agents.splice(0)) await a.stop();
    for (const args of agentArgs) agents.push(await startTrellis(args));
    await eventually(
      async () => (await roundTrip(upstreamPort, 'no servers')) === 'no servers',
      20_000,
      200,
    );
  });
});

describe('mesh: fail closed when the certificate expires with the servers gone', function () {
  this.timeout(90_000);
  const tmp = tempDirs();
  let server: TrellisProcess | undefined;
  let agent: TrellisProcess | undefined;
  let app: Server;

  after(async () => {
    await agent?.stop();
    await server?.stop();
    app?.close();
    tmp.removeAll();
  });

  it('keeps serving until the leaf expires, then refuses and turns the listening check critical', async () => {
    app = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    const appPort = (app.address() as { port: number }).port;
    server = await startServerProcess(tmp.make('exp-srv'), 'srv');
    const cfg = await request(`http://${server.address}/v1/connect/ca/configuration`, {
      method: 'PUT',
      body: JSON.stringify({ Config: { LeafCertTTL: '12s' } }),
    });
    expect(cfg.statusCode).to.equal(200);
    await cfg.body.text();
    const [sidecarPort, upstreamPort] = [await freePort(), await freePort()];
    const conf = tmp.make('exp-conf');
    // One agent hosts both: "web" calls "api" through its own upstream listener.
    writeFileSync(
      join(conf, 'services.hcl'),
      `service {
  name = "api"
  port = ${appPort}
  connect {
    sidecar_service {
      address = "127.0.0.1"
      port    = ${sidecarPort}
      proxy {
        upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }]
      }
    }
  }
}
`,
    );
    agent = await startTrellis([
      'agent',
      '--server',
      server.address,
      '--node',
      'exp-host',
      '--data-dir',
      tmp.make('exp-agent'),
      '--config-dir',
      conf,
      '--bind',
      '127.0.0.1:0',
    ]);
    const agentUrl = `http://${agent.address}`;
    const listening = async (): Promise<{ Status: string; Output: string } | undefined> => {
      const r = await request(`${agentUrl}/v1/agent/checks`);
      const checks = (await r.body.json()) as Record<
        string,
        { Name: string; Status: string; Output: string }
      >;
      return Object.values(checks).find((c) => c.Name === 'Connect Sidecar Listening');
    };
    await eventually(async () => (await listening())?.Status === 'passing', 20_000, 200);
    await eventually(async () => (await roundTrip(upstreamPort, 'up')) === 'up', 20_000, 200);
    await server.stop();
    server = undefined;
    // Still serving what it knows...
    expect(await roundTrip(upstreamPort, 'still')).to.equal('still');
    // ...until the 12s certificate runs out: then nothing passes and the check says why.
    await eventually(
      async () => {
        const c = await listening();
        return c?.Status === 'critical' && /certificate has expired/.test(c.Output);
      },
      30_000,
      250,
    );
    expect(await roundTrip(upstreamPort, 'late')).to.equal('');
  });
});
