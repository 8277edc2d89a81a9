/**
 * Sidecar registration with a real `trellis server` and `trellis agent`: a service with
 * `connect { sidecar_service { ... } }` from an HCL file and one registered through the consul
 * npm package each bring a connect-proxy instance that /v1/health/connect and
 * /v1/catalog/connect find, on ports from 21000 that survive a restart of the agent;
 * deregistering the service removes both.
 */
import Consul from 'consul';
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  getJSON,
  hostPort,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface Service {
  ID: string;
  Service: string;
  Kind?: string;
  Port: number;
  Tags: string[];
  Connect?: Record<string, unknown>;
  Proxy?: {
    DestinationServiceName: string;
    DestinationServiceID?: string;
    LocalServiceAddress?: string;
    LocalServicePort?: number;
    Upstreams?: Record<string, unknown>[];
  };
}

interface Entry {
  Node: { Node: string };
  Service: Service;
  Checks: { CheckID: string; Name: string; Status: string; Type: string }[];
}

describe('trellis agent: sidecar proxies', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess | undefined;
  let conf = '';
  let data = '';

  const startAgent = async (): Promise<TrellisProcess> => {
    agent = await startTrellis([
      'agent',
      '--server',
      server.address,
      '--node',
      'host-a',
      '--data-dir',
      data,
      '--config-dir',
      conf,
      '--bind',
      '127.0.0.1:0',
      '--heartbeat-interval',
      '300',
      '--heartbeat-ttl',
      '3000',
      '--sync-interval',
      '2000',
    ]);
    return agent;
  };

  /** The connect instances of `name` once there are `n` of them. */
  const connectEntries = (name: string, n = 1): Promise<Entry[]> =>
    eventually(async () => {
      const e = await getJSON<Entry[]>(`http://${server.address}/v1/health/connect/${name}`);
      return e.length === n && e;
    });

  before(async () => {
    server = await startServerProcess(tmp.make('srv'), 'srv');
    conf = tmp.make('conf');
    data = tmp.make('data');
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('registers the sidecar of a service from an HCL file', async () => {
    writeFileSync(
      join(conf, '10-web.hcl'),
      `service {
  name = "web"
  port = 8080
  tags = ["v1"]
  connect {
    sidecar_service {
      proxy {
        upstreams = [{ destination_name = "api", local_bind_port = 9191 }]
      }
    }
  }
}
`,
    );
    await startAgent();
    const [entry] = await connectEntries('web');
    expect(entry!.Node.Node).to.equal('host-a');
    expect(entry!.Service).to.deep.include({
      ID: 'web-sidecar-proxy',
      Service: 'web-sidecar-proxy',
      Kind: 'connect-proxy',
      Port: 21000,
      Tags: ['v1'],
    });
    expect(entry!.Service.Proxy).to.deep.equal({
      DestinationServiceName: 'web',
      DestinationServiceID: 'web',
      LocalServiceAddress: '127.0.0.1',
      LocalServicePort: 8080,
      Upstreams: [
        {
          DestinationType: 'service',
          DestinationName: 'api',
          LocalBindAddress: '127.0.0.1',
          LocalBindPort: 9191,
        },
      ],
    });
    // The alias check follows web, which has no checks: passing.
    const alias = entry!.Checks.find((c) => c.CheckID === 'service:web-sidecar-proxy:2');
    expect(alias).to.deep.include({
      Name: 'Connect Sidecar Aliasing web',
      Status: 'passing',
      Type: 'alias',
    });

    const catalog = await getJSON<{ ServiceID: string; ServicePort: number }[]>(
      `http://${server.address}/v1/catalog/connect/web`,
    );
    expect(catalog.map((c) => [c.ServiceID, c.ServicePort])).to.deep.equal([
      ['web-sidecar-proxy', 21000],
    ]);
    // The block is registration sugar: the service's own entry keeps only `Connect: {}`.
    const [web] = await getJSON<{ ServiceConnect: unknown }[]>(
      `http://${server.address}/v1/catalog/service/web`,
    );
    expect(web!.ServiceConnect).to.deep.equal({});
    const local = await getJSON<Record<string, Service>>(
      `http://${agent!.address}/v1/agent/services`,
    );
    expect(Object.keys(local).sort()).to.deep.equal(['web', 'web-sidecar-proxy']);
  });

  it('registers the sidecar of a service registered with the consul npm package', async () => {
    const consul = new Consul({ ...hostPort(agent!.address) });
    await consul.agent.service.register({
      name: 'billing',
      id: 'billing-1',
      port: 7070,
      connect: { sidecarService: {} },
    } as never);
    const [entry] = await connectEntries('billing');
    expect(entry!.Service).to.deep.include({
      ID: 'billing-1-sidecar-proxy',
      Service: 'billing-sidecar-proxy',
      Kind: 'connect-proxy',
      Port: 21001,
    });
    expect(entry!.Service.Proxy).to.deep.include({
      DestinationServiceName: 'billing',
      DestinationServiceID: 'billing-1',
      LocalServicePort: 7070,
    });
    const services = (await consul.agent.service.list()) as Record<string, Service>;
    expect(services['billing-1-sidecar-proxy']).to.deep.include({ Port: 21001 });
  });

  it('refuses upstreams that share a listener, with a 400 that names the field', async () => {
    const r = await request(`http://${agent!.address}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({
        Name: 'bad',
        Connect: {
          SidecarService: {
            Proxy: {
              Upstreams: [
                { DestinationName: 'a', LocalBindPort: 9300 },
                { DestinationName: 'b', LocalBindPort: 9300 },
              ],
            },
          },
        },
      }),
    });
    expect(r.statusCode).to.equal(400);
    expect(await r.body.text()).to.contain(
      'Connect.SidecarService.Proxy.Upstreams[1].LocalBindPort: 127.0.0.1:9300 is already the listener of Upstreams[0]',
    );
    const local = await getJSON<Record<string, Service>>(
      `http://${agent!.address}/v1/agent/services`,
    );
    expect(local).to.not.have.property('bad');
  });

  it('keeps every sidecar port across a restart, even with a new service loaded first', async () => {
    await agent!.stop();
    // Loaded before web: without the remembered ports it would take 21000.
    writeFileSync(
      join(conf, '05-shop.hcl'),
      'service {\n  name = "shop"\n  port = 6060\n  connect { sidecar_service {} }\n}\n',
    );
    await startAgent();
    const ports = async (): Promise<Record<string, number>> => {
      const local = await getJSON<Record<string, Service>>(
        `http://${agent!.address}/v1/agent/services`,
      );
      return Object.fromEntries(
        Object.values(local)
          .filter((s) => s.Kind === 'connect-proxy')
          .map((s) => [s.ID, s.Port]),
      );
    };
    expect(await ports()).to.deep.equal({
      'web-sidecar-proxy': 21000,
      'billing-1-sidecar-proxy': 21001,
      'shop-sidecar-proxy': 21002,
    });
    const [web] = await connectEntries('web');
    expect(web!.Service.Port).to.equal(21000);
    const [billing] = await connectEntries('billing');
    expect(billing!.Service.Port).to.equal(21001);
  });

  it('deregisters the sidecar with its service', async () => {
    const consul = new Consul({ ...hostPort(agent!.address) });
    await consul.agent.service.deregister('billing-1');
    await consul.agent.service.deregister('web');
    await connectEntries('billing', 0);
    await connectEntries('web', 0);
    await eventually(async () => {
      const names = await getJSON<Record<string, string[]>>(
        `http://${server.address}/v1/catalog/services`,
      );
      return !('web' in names) && !('web-sidecar-proxy' in names) && !('billing' in names);
    });
    const local = await getJSON<Record<string, Service>>(
      `http://${agent!.address}/v1/agent/services`,
    );
    expect(Object.keys(local).sort()).to.deep.equal(['shop', 'shop-sidecar-proxy']);
  });
});
