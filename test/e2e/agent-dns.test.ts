/**
 * The agent's DNS against a real server and agent (processes): `.consul` names answered from
 * the catalog over UDP and TCP, virtual IPs of mesh services, NXDOMAIN for unknown names.
 */
import { expect } from 'chai';
import { Resolver } from 'node:dns/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
  agentArgs,
} from '../helpers/trellis-process.js';

describe('agent DNS (dns_addr) with a real server', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let resolver: Resolver;

  before(async () => {
    server = await startServerProcess(tmp.make('dns-srv'), 'srv');
    const conf = tmp.make('dns-conf');
    writeFileSync(join(conf, 'settings.hcl'), 'dns_addr = "127.0.0.1:0"\n');
    writeFileSync(
      join(conf, 'web.hcl'),
      'service {\n  name = "web"\n  port = 8080\n  tags = ["v1"]\n  connect { sidecar_service {} }\n}\n',
    );
    agent = await startTrellis(agentArgs(server.address, 'dns-node', tmp.make('dns-data'), conf));
    const m = /trellis agent dns on ([\d.]+:\d+)/.exec(agent.output());
    expect(m, agent.output()).to.not.equal(null);
    resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([m![1]!]);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('answers <svc>.service.consul with healthy instances, A and SRV, and a tag filter', async () => {
    const a = await eventually(
      () => resolver.resolve4('web.service.consul').catch(() => undefined),
      30_000,
      300,
    );
    expect(a).to.deep.equal(['127.0.0.1']);
    const srv = await resolver.resolveSrv('web.service.consul');
    expect(srv.map((s) => [s.name, s.port])).to.deep.equal([['dns-node.node.dc1.consul', 8080]]);
    expect(await resolver.resolve4('v1.web.service.consul')).to.deep.equal(['127.0.0.1']);
  });

  it('answers <svc>.virtual.consul with the service virtual IP', async () => {
    const vip = await eventually(
      () => resolver.resolve4('web.virtual.consul').catch(() => undefined),
      30_000,
      300,
    );
    expect(vip[0]).to.match(/^240\.0\.0\.\d+$/);
  });

  it('answers NXDOMAIN for unknown services and nodes', async () => {
    for (const name of ['nope.service.consul', 'ghost.node.consul']) {
      const err = await resolver.resolve4(name).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code, name).to.equal('ENOTFOUND');
    }
    expect(await resolver.resolve4('dns-node.node.consul')).to.deep.equal(['127.0.0.1']);
  });
});
