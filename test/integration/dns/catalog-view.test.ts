/**
 * The agent's DNS over real sockets, answering from a real catalog server through the client:
 * instances with warning checks (only_passing), and `<svc>.service` answering the virtual IP
 * when virtualIpsFor says so.
 */
import { expect } from 'chai';
import { Resolver } from 'node:dns/promises';
import { request } from 'undici';
import { catalogDnsView } from '../../../src/agent/dns/catalog-view.js';
import { startDnsServer, type DnsServer } from '../../../src/agent/dns/server.js';
import { createClient, type TrellisClient } from '../../../src/client/index.js';
import { systemClock } from '../../../src/core/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';

async function register(t: TestServer, body: Record<string, unknown>): Promise<void> {
  const r = await request(`${t.url}/v1/catalog/register`, {
    method: 'PUT',
    body: JSON.stringify({ Address: '127.0.0.1', ...body }),
  });
  expect(r.statusCode, await r.body.text()).to.equal(200);
}

const check = (id: string, serviceId: string, status: string) => ({
  CheckID: id,
  Name: id,
  Status: status,
  ServiceID: serviceId,
});

describe('agent DNS from the catalog', function () {
  this.timeout(30_000);
  let t: TestServer;
  let client: TrellisClient;
  const servers: DnsServer[] = [];

  before(async () => {
    t = await startTestServer();
    client = createClient({ addresses: [t.server.address] });
    await register(t, {
      Node: 'n1',
      Address: '10.0.0.1',
      Service: { ID: 'web', Service: 'web', Port: 8080 },
      Checks: [check('web-ok', 'web', 'passing')],
    });
    await register(t, {
      Node: 'n2',
      Address: '10.0.0.2',
      Service: { ID: 'web', Service: 'web', Port: 8080 },
      Checks: [check('web-slow', 'web', 'warning')],
    });
    await register(t, {
      Node: 'n3',
      Address: '10.0.0.3',
      Service: { ID: 'web', Service: 'web', Port: 8080 },
      Checks: [check('web-down', 'web', 'critical')],
    });
    await register(t, {
      Node: 'n1',
      Address: '10.0.0.1',
      Service: {
        ID: 'web-sidecar-proxy',
        Service: 'web-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: { DestinationServiceName: 'web', DestinationServiceID: 'web' },
      },
    });
  });

  after(async () => {
    for (const s of servers) await s.close();
    await client.close();
    await t.close();
  });

  async function resolverFor(opts: {
    onlyPassing?: boolean;
    virtualIpsFor?: () => boolean;
  }): Promise<Resolver> {
    const dns = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      view: catalogDnsView(client, systemClock, { onlyPassing: opts.onlyPassing ?? false }),
      domain: 'consul.',
      datacenter: 'dc1',
      nodeName: 'n1',
      ttl: 0,
      ...(opts.virtualIpsFor ? { virtualIpsFor: opts.virtualIpsFor } : {}),
    });
    servers.push(dns);
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    return resolver;
  }

  it('answers passing and warning instances, never critical ones (only_passing = false)', async () => {
    const r = await resolverFor({});
    expect((await r.resolve4('web.service.consul')).sort()).to.deep.equal(['10.0.0.1', '10.0.0.2']);
  });

  it('answers only passing instances with only_passing = true', async () => {
    const r = await resolverFor({ onlyPassing: true });
    expect(await r.resolve4('web.service.consul')).to.deep.equal(['10.0.0.1']);
  });

  it('answers the virtual IP for <svc>.service A when virtualIpsFor returns true', async () => {
    const vip = (await client.catalog.virtualIps()).value.web;
    expect(vip).to.match(/^240\.0\.0\.\d+$/);
    const r = await resolverFor({ virtualIpsFor: () => true });
    expect(await r.resolve4('web.service.consul')).to.deep.equal([vip]);
    // SRV keeps the real instances: their ports matter.
    const srv = await r.resolveSrv('web.service.consul');
    expect(srv.map((s) => s.name).sort()).to.deep.equal([
      'n1.node.dc1.consul',
      'n2.node.dc1.consul',
    ]);
    const off = await resolverFor({ virtualIpsFor: () => false });
    expect((await off.resolve4('web.service.consul')).sort()).to.deep.equal([
      '10.0.0.1',
      '10.0.0.2',
    ]);
  });
});
