/**
 * The agent endpoints Consul clients call besides services and checks: join, force-leave,
 * version, host and the JSON metrics. A real `trellis server` and `trellis agent` processes,
 * driven by the consul npm client where it has the call, plain HTTP where it has not.
 */
import Consul from 'consul';
import { expect } from 'chai';
import { hostname } from 'node:os';
import { request } from 'undici';
import { freePort } from '../helpers/net.js';
import {
  eventually,
  hostPort,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

type ConsulClient = InstanceType<typeof Consul>;

async function call(
  method: 'GET' | 'PUT',
  url: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; text: string; json: () => unknown; type: string }> {
  const r = await request(url, {
    method,
    ...(token ? { headers: { 'x-consul-token': token } } : {}),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  return {
    status: r.statusCode,
    text,
    json: () => JSON.parse(text) as unknown,
    type: String(r.headers['content-type']),
  };
}

describe('agent endpoints: force-leave, version, host, metrics', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  const started: TrellisProcess[] = [];
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let consul: ConsulClient;

  const startAgent = (node: string, servers: string): Promise<TrellisProcess> =>
    startTrellis([
      'agent',
      '--server',
      servers,
      '--node',
      node,
      '--data-dir',
      dirs.make(node),
      '--bind',
      '127.0.0.1:0',
      '--heartbeat-interval',
      '300',
    ]).then((p) => {
      started.push(p);
      return p;
    });

  before(async () => {
    server = await startServerProcess(dirs.make('ep-srv'), 'srv', ['--https-bind', 'off']);
    started.push(server);
    agent = await startAgent('host-ep', server.address);
    consul = new Consul({ ...hostPort(agent.address) });
  });
  after(async () => {
    for (const p of started.reverse()) await p.stop();
    dirs.removeAll();
  });

  it('force-leave removes a dead node from the catalog at once', async () => {
    const other = await startAgent('host-gone', server.address);
    await eventually(async () => {
      const nodes = (await consul.catalog.node.list()) as { Node: string }[];
      return nodes.some((n) => n.Node === 'host-gone');
    });
    await other.kill9();
    await consul.agent.forceLeave('host-gone');
    const nodes = (await consul.catalog.node.list()) as { Node: string }[];
    expect(nodes.map((n) => n.Node)).to.not.include('host-gone');

    const unknown = await call('PUT', `http://${agent.address}/v1/agent/force-leave/nobody`);
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.equal('No node found with name "nobody"');
    const own = await call('PUT', `http://${agent.address}/v1/agent/force-leave/host-ep`);
    expect(own.status).to.equal(400);
    const srv = await call('PUT', `http://${agent.address}/v1/agent/force-leave/srv`);
    expect(srv.status).to.equal(400);
    expect(srv.text).to.include('is a server');
  });

  it('answers /v1/agent/version', async () => {
    const r = await call('GET', `http://${agent.address}/v1/agent/version`);
    expect(r.status).to.equal(200);
    expect(r.type).to.equal('application/json');
    const v = r.json() as Record<string, unknown>;
    expect(v).to.have.keys(
      'SHA',
      'BuildDate',
      'HumanVersion',
      'FIPS',
      'Version',
      'Revision',
      'Prerelease',
    );
    const self = (await consul.agent.self()) as { Config: { Version: string } };
    expect(v.Version).to.equal(self.Config.Version);
  });

  it('answers /v1/agent/host with the host figures', async () => {
    const r = await call('GET', `http://${agent.address}/v1/agent/host`);
    expect(r.status).to.equal(200);
    const h = r.json() as {
      Memory: { total: number; used: number; usedPercent: number };
      CPU: { cpu: number; modelName: string }[];
      Host: { hostname: string; kernelVersion: string; procs: number; bootTime: number };
      Disk: { path: string; total: number; free: number };
      CollectionTime: number;
      Errors: string[];
    };
    expect(h.Errors).to.deep.equal([]);
    expect(h.Memory.total).to.be.greaterThan(0);
    expect(h.Memory.usedPercent).to.be.within(0, 100);
    expect(h.CPU.length).to.be.greaterThan(0);
    expect(h.Host.hostname).to.equal(hostname());
    expect(h.Host.procs).to.be.greaterThan(0);
    expect(h.Disk.path).to.equal('/');
    expect(h.Disk.total).to.be.greaterThan(h.Disk.free);
    expect(h.CollectionTime).to.be.greaterThan(h.Host.bootTime * 1e9);
  });

  it('answers /v1/agent/metrics as Consul JSON, and as Prometheus text when asked', async () => {
    const r = await call('GET', `http://${agent.address}/v1/agent/metrics`);
    expect(r.status).to.equal(200);
    const m = r.json() as {
      Timestamp: string;
      Gauges: { Name: string; Value: number; Labels: Record<string, string> }[];
      Counters: { Name: string; Count: number; Sum: number }[];
      Samples: { Name: string; Count: number; Sum: number; Mean: number }[];
    };
    expect(m.Timestamp).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    const heap = m.Gauges.find((g) => g.Name === 'trellis_nodejs_heap_size_total_bytes');
    expect(heap?.Value).to.be.greaterThan(0);
    const cpu = m.Counters.find((c) => c.Name === 'trellis_process_cpu_seconds_total');
    expect(cpu?.Sum).to.be.greaterThan(0);
    for (const s of m.Samples) expect(s.Mean * s.Count).to.be.closeTo(s.Sum, 1e-6);

    const prom = await call('GET', `http://${agent.address}/v1/agent/metrics?format=prometheus`);
    expect(prom.type).to.match(/^text\/plain/);
    expect(prom.text).to.include('# TYPE trellis_process_cpu_seconds_total counter');
    const accept = await request(`http://${agent.address}/v1/agent/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    expect(await accept.body.text()).to.include('# TYPE');
  });
});

describe('agent join', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  const started: TrellisProcess[] = [];
  after(async () => {
    for (const p of started.reverse()) await p.stop();
    dirs.removeAll();
  });

  it('adds a server the agent fails over to, once it answers for the datacenter', async () => {
    const first = await startServerProcess(dirs.make('join-a'), 'srv-a', ['--https-bind', 'off']);
    started.push(first);
    const second = await startServerProcess(dirs.make('join-b'), 'srv-b', ['--https-bind', 'off']);
    started.push(second);
    const agent = await startTrellis([
      'agent',
      '--server',
      first.address,
      '--node',
      'host-join',
      '--data-dir',
      dirs.make('join-agent'),
      '--bind',
      '127.0.0.1:0',
      '--heartbeat-interval',
      '300',
    ]);
    started.push(agent);
    const consul = new Consul({ ...hostPort(agent.address) });
    // The agent resolves (and keeps) the anonymous token while its first server is up.
    await consul.agent.self();
    await consul.agent.join(second.address);
    // Joining again is fine; a WAN join and an address that does not answer are refused.
    await consul.agent.join(second.address);
    const wan = await call('PUT', `http://${agent.address}/v1/agent/join/${second.address}?wan=1`);
    expect(wan.status).to.equal(400);
    expect(wan.text).to.include('WAN');
    const deadAddr = `127.0.0.1:${await freePort()}`;
    const dead = await call('PUT', `http://${agent.address}/v1/agent/join/${deadAddr}`);
    expect(dead.status).to.equal(502);
    expect(dead.text).to.match(/^cannot join 127\.0\.0\.1:\d+: /);
    const onServer = await call('PUT', `http://${first.address}/v1/agent/join/${second.address}`);
    expect(onServer.status).to.equal(400);
    expect(onServer.text).to.include('servers do not join other servers');

    // With the first server gone, the agent carries on with the joined one.
    await first.stop();
    await consul.agent.service.register({ name: 'joined', id: 'joined-1', port: 1 } as never);
    const direct = new Consul({ ...hostPort(second.address) });
    const nodes = (await direct.catalog.service.nodes('joined')) as { Node: string }[];
    expect(nodes.map((n) => n.Node)).to.deep.equal(['host-join']);
    // Reads through the agent are forwarded to it too.
    const viaAgent = (await consul.catalog.service.nodes('joined')) as { Node: string }[];
    expect(viaAgent.map((n) => n.Node)).to.deep.equal(['host-join']);
  });
});

describe('agent endpoints under ACLs', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  let server: TrellisProcess;
  let base: string;
  let mgmt: string;
  let reader: string;

  before(async () => {
    server = await startServerProcess(dirs.make('ep-acl'), 'srv', [
      '--acl-default-policy',
      'deny',
      '--https-bind',
      'off',
    ]);
    base = `http://${server.address}`;
    mgmt = ((await call('PUT', `${base}/v1/acl/bootstrap`)).json() as { SecretID: string })
      .SecretID;
    const policy = (
      await call('PUT', `${base}/v1/acl/policy`, mgmt, {
        Name: 'op-read',
        Rules: 'operator = "read"\nnode_prefix "" { policy = "write" }',
      })
    ).json() as { ID: string };
    reader = (
      (
        await call('PUT', `${base}/v1/acl/token`, mgmt, { Policies: [{ ID: policy.ID }] })
      ).json() as { SecretID: string }
    ).SecretID;
  });
  after(async () => {
    await server?.stop();
    dirs.removeAll();
  });

  it('needs operator:read for host, operator:write for force-leave, agent:write for join', async () => {
    expect((await call('GET', `${base}/v1/agent/version`)).status).to.equal(200);
    expect((await call('GET', `${base}/v1/agent/host`)).status).to.equal(403);
    expect((await call('GET', `${base}/v1/agent/host`, reader)).status).to.equal(200);
    // node:write on every node is not enough: forcing a node out is an operator's act.
    const refused = await call('PUT', `${base}/v1/agent/force-leave/srv`, reader);
    expect(refused.status).to.equal(403);
    expect(refused.text).to.include('operator:write');
    const join = await call('PUT', `${base}/v1/agent/join/${server.address}`, reader);
    expect(join.status).to.equal(403);
    expect((await call('GET', `${base}/v1/agent/metrics`)).status).to.equal(403);
    expect((await call('GET', `${base}/v1/agent/metrics`, mgmt)).status).to.equal(200);
  });
});
