/**
 * An agent write (`/v1/agent/...`) answers only once the change is in the catalog, as Consul's
 * agent syncs before it replies: a catalog or health read made right after the answer sees it.
 * A `trellis server` and a `trellis agent` run as separate processes; the agent's periodic sync
 * is set to an hour, so only the write itself can have put the change in the catalog. With the
 * server stopped the agent still answers, and the change reaches the catalog when it returns.
 */
import Consul from 'consul';
import { expect } from 'chai';
import {
  eventually,
  hostPort,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

type ConsulClient = InstanceType<typeof Consul>;

interface HealthEntry {
  Service: { ID: string };
  Checks: { CheckID: string; Status: string }[];
}

const TRIES = 25;

describe('agent writes reach the catalog before the agent answers', function () {
  this.timeout(180_000);
  const dirs = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let viaAgent: ConsulClient;
  let direct: ConsulClient;
  let serverDir: string;

  const startServer = (bind: string): Promise<TrellisProcess> =>
    startTrellis([
      'server',
      '--data-dir',
      serverDir,
      '--bind',
      bind,
      '--node',
      'srv',
      '--acl-default-policy',
      'allow',
      '--https-bind',
      'off',
    ]);

  before(async () => {
    serverDir = dirs.make('sync-srv');
    server = await startServer('127.0.0.1:0');
    agent = await startTrellis([
      'agent',
      '--server',
      server.address,
      '--node',
      'host-sync',
      '--data-dir',
      dirs.make('sync-agent'),
      '--bind',
      '127.0.0.1:0',
      '--sync-interval',
      '3600000',
    ]);
    viaAgent = new Consul({ ...hostPort(agent.address) });
    direct = new Consul({ ...hostPort(server.address) });
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    dirs.removeAll();
  });

  const nodesOf = async (name: string): Promise<string[]> =>
    ((await direct.catalog.service.nodes(name)) as { ServiceID: string }[]).map((s) => s.ServiceID);
  const health = async (name: string): Promise<HealthEntry[]> =>
    (await direct.health.service(name)) as HealthEntry[];
  const statusOf = async (name: string, checkId: string): Promise<string | undefined> =>
    (await health(name))[0]?.Checks.find((c) => c.CheckID === checkId)?.Status;

  it(`shows a registration in catalog and health reads made right after it (${TRIES} tries)`, async () => {
    for (let i = 0; i < TRIES; i++) {
      const name = `reg-${i}`;
      await viaAgent.agent.service.register({
        name,
        id: `${name}-1`,
        port: 8000 + i,
        check: { ttl: '60s' },
      } as never);
      expect(await nodesOf(name), `try ${i}: catalog`).to.deep.equal([`${name}-1`]);
      const h = await health(name);
      expect(
        h.map((e) => e.Service.ID),
        `try ${i}: health`,
      ).to.deep.equal([`${name}-1`]);
      expect(h[0]!.Checks.map((c) => c.CheckID)).to.include(`service:${name}-1`);
    }
  });

  it(`shows TTL updates, check registrations and maintenance at once (${TRIES} tries)`, async () => {
    await viaAgent.agent.service.register({
      name: 'ttl',
      id: 'ttl-1',
      port: 9000,
      check: { checkid: 'ttl-check', ttl: '60s' },
    } as never);
    const steps: [string, () => Promise<unknown>][] = [
      ['passing', () => viaAgent.agent.check.pass('ttl-check')],
      ['warning', () => viaAgent.agent.check.warn('ttl-check')],
      ['critical', () => viaAgent.agent.check.fail('ttl-check')],
    ];
    for (let i = 0; i < TRIES; i++) {
      const [want, write] = steps[i % steps.length]!;
      await write();
      expect(await statusOf('ttl', 'ttl-check'), `try ${i}`).to.equal(want);
    }
    // PUT /v1/agent/check/update/:id (node-consul has no call for it).
    for (const st of ['passing', 'warning']) {
      const r = await fetch(`http://${agent.address}/v1/agent/check/update/ttl-check`, {
        method: 'PUT',
        body: JSON.stringify({ Status: st, Output: `now ${st}` }),
      });
      expect(r.status).to.equal(200);
      expect(await statusOf('ttl', 'ttl-check')).to.equal(st);
    }

    await viaAgent.agent.check.register({
      name: 'extra',
      id: 'extra-check',
      serviceid: 'ttl-1',
      ttl: '60s',
      status: 'passing',
    } as never);
    expect(await statusOf('ttl', 'extra-check')).to.equal('passing');
    await viaAgent.agent.check.deregister('extra-check');
    expect(await statusOf('ttl', 'extra-check')).to.equal(undefined);

    await viaAgent.agent.service.maintenance({ id: 'ttl-1', enable: true, reason: 'x' } as never);
    expect(await statusOf('ttl', '_service_maintenance:ttl-1')).to.equal('critical');
    await viaAgent.agent.service.maintenance({ id: 'ttl-1', enable: false } as never);
    expect(await statusOf('ttl', '_service_maintenance:ttl-1')).to.equal(undefined);

    await viaAgent.agent.maintenance({ enable: true, reason: 'patching' } as never);
    expect(await statusOf('ttl', '_node_maintenance')).to.equal('critical');
    await viaAgent.agent.maintenance({ enable: false } as never);
    expect(await statusOf('ttl', '_node_maintenance')).to.equal(undefined);
  });

  it(`removes a deregistered service from reads made right after it (${TRIES} tries)`, async () => {
    for (let i = 0; i < TRIES; i++) {
      const name = `reg-${i}`;
      await viaAgent.agent.service.deregister(`${name}-1`);
      expect(await nodesOf(name), `try ${i}: catalog`).to.deep.equal([]);
      expect(await health(name), `try ${i}: health`).to.deep.equal([]);
    }
  });

  it('still answers writes while the server is down, and syncs them when it returns', async () => {
    // The agent resolves (and caches) the anonymous token while the server is up.
    await viaAgent.agent.service.register({ name: 'before', id: 'before-1', port: 1 } as never);
    const address = server.address;
    await server.stop();
    await viaAgent.agent.service.register({ name: 'offline', id: 'offline-1', port: 2 } as never);
    await viaAgent.agent.service.deregister('before-1');
    const local = (await viaAgent.agent.service.list()) as Record<string, unknown>;
    expect(local).to.have.property('offline-1');
    expect(local).to.not.have.property('before-1');

    server = await startServer(address);
    // The failed sync retries with backoff (at most 30 s), not the hour-long periodic sync.
    await eventually(async () => (await nodesOf('offline')).length === 1, 60_000, 200);
    await eventually(async () => (await nodesOf('before')).length === 0, 60_000, 200);
  });
});
