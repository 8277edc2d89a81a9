/** The consul npm package against one `trellis server` and two `trellis agent` processes. */
import Consul from 'consul';
import { expect } from 'chai';
import { consulCompatSuite } from './consul-compat.js';
import {
  eventually,
  hostPort,
  removeDir,
  startTrellis,
  tempDir,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

describe('consul npm client against a server and two agents', function () {
  let server: TrellisProcess;
  let agentA: TrellisProcess;
  let agentB: TrellisProcess;
  const dirs: string[] = [];
  let a: InstanceType<typeof Consul>;
  let b: InstanceType<typeof Consul>;

  const startAgent = (node: string, dir: string): Promise<TrellisProcess> =>
    startTrellis([
      'agent',
      '--server',
      server.address,
      '--node',
      node,
      '--data-dir',
      dir,
      '--bind',
      '127.0.0.1:0',
      '--heartbeat-interval',
      '200',
      '--heartbeat-ttl',
      '1500',
      '--sync-interval',
      '2000',
    ]);

  before(async () => {
    for (let i = 0; i < 3; i++) dirs.push(tempDir(`cluster${i}`));
    server = await startTrellis([
      'server',
      '--data-dir',
      dirs[0]!,
      '--bind',
      '127.0.0.1:0',
      '--node',
      'srv1',
      '--acl-default-policy',
      'allow',
      '--session-min-ttl',
      '1000',
    ]);
    agentA = await startAgent('host-a', dirs[1]!);
    agentB = await startAgent('host-b', dirs[2]!);
    a = new Consul({ ...hostPort(agentA.address) });
    b = new Consul({ ...hostPort(agentB.address) });
  });
  after(async () => {
    await agentA?.stop();
    await agentB?.stop();
    await server?.stop();
    for (const d of dirs) removeDir(d);
  });

  consulCompatSuite({ consul: () => a, other: () => b, node: 'host-a' });

  it("answers the agent API for the server's own node on the server", async () => {
    const srv = new Consul({ ...hostPort(server.address) });
    const self = (await srv.agent.self()) as { Config: { NodeName: string; Server: boolean } };
    expect(self.Config).to.include({ NodeName: 'srv1', Server: true });
    await srv.agent.service.register({ name: 'on-server', id: 'on-server-1', port: 1234 } as never);
    // The server's own agent also answers once its catalog has the change.
    const on = (await a.catalog.service.nodes('on-server')) as { Node: string }[];
    expect(on.map((s) => s.Node)).to.deep.equal(['srv1']);
    await srv.agent.service.deregister('on-server-1');
    expect(await a.catalog.service.nodes('on-server')).to.deep.equal([]);
    const consulSvc = (await a.catalog.service.nodes('consul')) as { Node: string }[];
    expect(consulSvc.map((s) => s.Node)).to.deep.equal(['srv1']);
  });

  it('lists every agent as a member and stops listing instances of a dead host as passing', async () => {
    await b.agent.service.register({
      name: 'api',
      id: 'api-b',
      port: 7000,
      check: { ttl: '60s', status: 'passing' },
    } as never);
    await a.agent.service.register({
      name: 'api',
      id: 'api-a',
      port: 7000,
      check: { ttl: '60s', status: 'passing' },
    } as never);
    await eventually(
      async () =>
        ((await a.health.service({ service: 'api', passing: true })) as unknown[]).length === 2,
    );
    const members = (await a.agent.members()) as { Name: string; Status: number }[];
    expect(members.map((m) => m.Name)).to.include.members(['srv1', 'host-a', 'host-b']);

    await agentB.kill9();
    const passing = await eventually(async () => {
      const list = (await a.health.service({ service: 'api', passing: true })) as {
        Service: { ID: string };
      }[];
      return list.length === 1 ? list : undefined;
    }, 15_000);
    expect(passing[0]!.Service.ID).to.equal('api-a');
    const all = (await a.health.service('api')) as {
      Node: { Node: string };
      Checks: { CheckID: string; Status: string }[];
    }[];
    const dead = all.find((e) => e.Node.Node === 'host-b')!;
    expect(dead.Checks.find((c) => c.CheckID === 'serfHealth')?.Status).to.equal('critical');
    const after = (await a.agent.members()) as { Name: string; Status: number }[];
    expect(after.find((m) => m.Name === 'host-b')?.Status).to.equal(4);
  });
});
