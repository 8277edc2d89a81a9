/**
 * Listener clashes with a real `trellis server` and `trellis agent`. One agent runs web's
 * sidecar (upstream "api" on a local port) and api's sidecar in front of a TCP echo app, so
 * bytes sent to web's upstream port come back through both proxies.
 *
 * - A sidecar or upstream on a port another proxy of the agent, or the agent itself (HTTP API,
 *   DNS), already listens on is refused with a 400 naming both, through the API, the CLI and a
 *   config dir reload, and nothing changes: the old registrations keep serving.
 * - A port held by another process is found only when the proxy binds: the new listener is
 *   opened before the old one is closed, so the old listener keeps serving, and the sidecar's
 *   listening check is critical with the cause until the port is free.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import {
  agentArgs,
  eventually,
  getJSON,
  startServerProcess,
  startTrellis,
  tempDirs,
  TRELLIS_BIN,
  type TrellisProcess,
} from '../helpers/trellis-process.js';
import { freePort, tcpRoundTrip } from '../helpers/net.js';

interface Check {
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  ServiceID: string;
}

describe('trellis agent: listener clashes', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let app: Server;
  let conf = '';
  let webPort = 0;
  let apiPort = 0;
  let upstream = 0;
  let dnsPort = 0;
  const holders: Server[] = [];

  const put = async (path: string, body?: unknown): Promise<{ status: number; text: string }> => {
    const r = await request(`http://${agent.address}${path}`, {
      method: 'PUT',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const localServices = (): Promise<Record<string, { Port: number; Proxy?: unknown }>> =>
    getJSON(`http://${agent.address}/v1/agent/services`);
  const web = (sidecarPort: number, upstreamPort: number): Record<string, unknown> => ({
    Name: 'web',
    Port: 1,
    Connect: {
      SidecarService: {
        Address: '127.0.0.1',
        Port: sidecarPort,
        Proxy: { Upstreams: [{ DestinationName: 'api', LocalBindPort: upstreamPort }] },
      },
    },
  });
  /** Bytes sent to `port` come back from api's echo app through both proxies. */
  const echoes = async (port: number): Promise<boolean> =>
    (await tcpRoundTrip(port, 'through the mesh')) === 'through the mesh';
  const listening = async (): Promise<Check> => {
    const checks = await getJSON<Record<string, Check>>(`http://${agent.address}/v1/agent/checks`);
    return checks['service:web-sidecar-proxy:1']!;
  };
  /** A server of this test process holding `port` on 127.0.0.1, as another program would. */
  const hold = async (port: number): Promise<Server> => {
    const s = createServer((c) => c.destroy());
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
    holders.push(s);
    return s;
  };

  before(async () => {
    app = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    const appPort = (app.address() as { port: number }).port;
    server = await startServerProcess(tmp.make('clash-srv'), 'srv');
    [webPort, apiPort, upstream] = [await freePort(), await freePort(), await freePort()];
    conf = tmp.make('clash-conf');
    writeFileSync(
      join(conf, 'api.hcl'),
      `service {
  name = "api"
  port = ${appPort}
  connect {
    sidecar_service {
      address = "127.0.0.1"
      port    = ${apiPort}
    }
  }
}
`,
    );
    agent = await startTrellis(agentArgs(server.address, 'host-a', tmp.make('clash-a'), conf));
    dnsPort = Number(/trellis agent dns on \S+:(\d+)/.exec(agent.output())![1]);
    const r = await put('/v1/agent/service/register', web(webPort, upstream));
    expect(r.status, r.text).to.equal(200);
    await eventually(() => echoes(upstream), 30_000, 200);
  });

  after(async () => {
    for (const h of holders) h.close();
    await agent?.stop();
    await server?.stop();
    app?.close();
    tmp.removeAll();
  });

  const refused: [string, () => Record<string, unknown>, () => string][] = [
    [
      "a sidecar on web's sidecar port",
      () => ({ Name: 'shop', Port: 7000, Connect: { SidecarService: { Port: webPort } } }),
      () =>
        `Connect.SidecarService.Port: port ${webPort} on 0.0.0.0 is already the inbound listener of proxy "web-sidecar-proxy" (127.0.0.1:${webPort}) on this agent; choose another port`,
    ],
    [
      "an upstream on web's upstream port",
      () => ({
        Name: 'shop',
        Port: 7000,
        Connect: {
          SidecarService: {
            Proxy: { Upstreams: [{ DestinationName: 'db', LocalBindPort: upstream }] },
          },
        },
      }),
      () =>
        `Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: port ${upstream} on 127.0.0.1 is already the upstream listener for "api" of proxy "web-sidecar-proxy" (127.0.0.1:${upstream}) on this agent`,
    ],
    [
      "a sidecar on the agent's HTTP API port",
      () => ({
        Name: 'shop',
        Port: 7000,
        Connect: { SidecarService: { Port: Number(agent.address.split(':')[1]) } },
      }),
      () =>
        `Connect.SidecarService.Port: port ${agent.address.split(':')[1]} on 0.0.0.0 is already the agent's HTTP API (${agent.address}) on this agent; choose another port`,
    ],
    [
      "an upstream on the agent's DNS port",
      () => ({
        Name: 'shop',
        Port: 7000,
        Connect: {
          SidecarService: {
            Proxy: { Upstreams: [{ DestinationName: 'db', LocalBindPort: dnsPort }] },
          },
        },
      }),
      () =>
        `Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: port ${dnsPort} on 127.0.0.1 is already the agent's DNS listener (UDP and TCP) (127.0.0.1:${dnsPort}) on this agent`,
    ],
    [
      "a standalone proxy on api's sidecar port",
      () => ({
        Kind: 'connect-proxy',
        Name: 'db-proxy',
        Port: apiPort,
        Proxy: { DestinationServiceName: 'db' },
      }),
      () =>
        `Port: port ${apiPort} on 0.0.0.0 is already the inbound listener of proxy "api-sidecar-proxy"`,
    ],
  ];
  for (const [name, body, message] of refused) {
    it(`PUT /v1/agent/service/register: ${name} is a 400 naming the clash, and nothing changes`, async () => {
      const before = await localServices();
      const r = await put('/v1/agent/service/register', body());
      expect(r.status).to.equal(400);
      expect(r.text).to.contain(message());
      expect(await localServices()).to.deep.equal(before);
      expect(await echoes(upstream)).to.equal(true);
    });
  }

  it('re-registering web onto its own ports is no clash', async () => {
    const r = await put('/v1/agent/service/register', web(webPort, upstream));
    expect(r.status, r.text).to.equal(200);
    expect(await echoes(upstream)).to.equal(true);
  });

  it('trellis services register: a clashing definition exits non-zero with one line, nothing registered', async () => {
    const defs = tmp.make('clash-defs');
    writeFileSync(
      join(defs, 'shop.hcl'),
      `service {\n  name = "shop"\n  port = 7000\n  connect {\n    sidecar_service { port = ${webPort} }\n  }\n}\n`,
    );
    const before = await localServices();
    const proc = spawn(
      process.execPath,
      [TRELLIS_BIN, 'services', 'register', 'shop.hcl', '--http-addr', agent.address],
      { cwd: defs, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => proc.once('close', r));
    expect(code).to.not.equal(0);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.contain(
      `Connect.SidecarService.Port: port ${webPort} on 0.0.0.0 is already the inbound listener of proxy "web-sidecar-proxy"`,
    );
    expect(await localServices()).to.deep.equal(before);
  });

  it('a config dir reload with a clash is refused as a whole (400), and the running services stay', async () => {
    const before = await localServices();
    // A good new service (loaded first: a one-by-one load would have added it), then one
    // whose upstream takes web's upstream port.
    writeFileSync(join(conf, 'a-good.hcl'), 'service {\n  name = "good"\n  port = 7100\n}\n');
    writeFileSync(
      join(conf, 'b-shop.hcl'),
      `service {
  name = "shop"
  port = 7000
  connect {
    sidecar_service {
      proxy {
        upstreams = [{ destination_name = "db", local_bind_port = ${upstream} }]
      }
    }
  }
}
`,
    );
    const r = await put('/v1/agent/reload');
    expect(r.status).to.equal(400);
    expect(r.text).to.contain('reload refused; the running configuration stays');
    expect(r.text).to.contain(
      `service "shop": Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: port ${upstream} on 127.0.0.1 is already the upstream listener for "api" of proxy "web-sidecar-proxy"`,
    );
    expect(await localServices()).to.deep.equal(before);
    expect(await echoes(upstream)).to.equal(true);
    // Without the clash the same reload goes through.
    writeFileSync(join(conf, 'b-shop.hcl'), 'service {\n  name = "shop"\n  port = 7000\n}\n');
    const ok = await put('/v1/agent/reload');
    expect(ok.status, ok.text).to.equal(200);
    expect(await localServices()).to.include.keys('good', 'shop', 'api-sidecar-proxy');
  });

  it('a port held by another process: the old listener keeps serving and the check says why', async () => {
    const taken = await freePort();
    const holder = await hold(taken);
    await eventually(async () => (await listening()).Status === 'passing', 20_000, 100);
    // The agent cannot know the port is taken until it binds: the registration is accepted.
    const r = await put('/v1/agent/service/register', web(webPort, taken));
    expect(r.status, r.text).to.equal(200);
    const check = await eventually(
      async () => {
        const c = await listening();
        return c.Status === 'critical' && c.Output.includes('EADDRINUSE') && c;
      },
      20_000,
      100,
    );
    expect(check.Output).to.contain(
      `cannot listen on 127.0.0.1:${taken}: port ${taken} is in use by another process (EADDRINUSE)`,
    );
    expect(check.Output).to.contain('the previous listeners');
    // The catalog has it too, from the health endpoint.
    await eventually(async () => {
      const checks = await getJSON<Check[]>(
        `http://${server.address}/v1/health/checks/web-sidecar-proxy`,
      );
      return checks.some((c) => c.Status === 'critical' && c.Output.includes('EADDRINUSE'));
    }, 20_000);
    // Make before break: the old upstream listener still carries traffic.
    expect(await echoes(upstream)).to.equal(true);
    expect(await echoes(upstream)).to.equal(true);

    // Once the other process lets the port go, the proxy moves there and closes the old one.
    await new Promise<void>((res) => holder.close(() => res()));
    await eventually(() => echoes(taken), 60_000, 200);
    await eventually(async () => (await listening()).Status === 'passing', 20_000, 100);
    await eventually(async () => (await tcpRoundTrip(upstream, 'old?')) === '', 10_000, 100);
  });

  it('a changed sidecar on free ports moves without a gap in its listeners', async () => {
    const next = await freePort();
    const r = await put('/v1/agent/service/register', web(webPort, next));
    expect(r.status, r.text).to.equal(200);
    await eventually(() => echoes(next), 30_000, 200);
    await eventually(async () => (await listening()).Status === 'passing', 20_000, 100);
  });
});
