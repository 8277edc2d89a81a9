/**
 * User events, prepared queries (HTTP and DNS), coordinates and the operator endpoints with the
 * npm `consul` client against one `trellis server` and two `trellis agent` processes; and a
 * prepared query surviving a server restart.
 */
import Consul from 'consul';
import { expect } from 'chai';
import { Resolver } from 'node:dns/promises';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import {
  agentArgs,
  eventually,
  hostPort,
  startServerProcess,
  startTrellis,
  tempDirs,
  TRELLIS_BIN,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface Entry {
  Node: { Node: string };
  Service: { ID: string; Address: string };
}
interface Executed {
  Service: string;
  Nodes: Entry[];
  Datacenter: string;
  Failovers: number;
}

async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown; text: string; headers: Record<string, unknown> }> {
  const r = await request(`http://${base}${path}`, {
    method: method as 'GET',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.body.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.statusCode, body: parsed, text, headers: r.headers };
}

describe('events, prepared queries, coordinates and operator with the consul client', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agentA: TrellisProcess;
  let agentB: TrellisProcess;
  let a: InstanceType<typeof Consul>;
  let b: InstanceType<typeof Consul>;
  let dnsA: Resolver;

  before(async () => {
    server = await startServerProcess(tmp.make('eq-srv'), 'srv1');
    agentA = await startTrellis(
      agentArgs(server.address, 'host-a', tmp.make('eq-a'), tmp.make('eq-a-conf')),
    );
    agentB = await startTrellis(
      agentArgs(server.address, 'host-b', tmp.make('eq-b'), tmp.make('eq-b-conf')),
    );
    a = new Consul({ ...hostPort(agentA.address) });
    b = new Consul({ ...hostPort(agentB.address) });
    const dns = /trellis agent dns on ([\d.]+:\d+)/.exec(agentA.output());
    expect(dns, agentA.output()).to.not.equal(null);
    dnsA = new Resolver({ timeout: 2000, tries: 2 });
    dnsA.setServers([dns![1]!]);

    const web = (id: string, address: string, tags: string[]) => ({
      name: 'web',
      id,
      address,
      port: 8080,
      tags,
      check: { ttl: '600s', status: 'passing' },
    });
    await a.agent.service.register(web('web-a', '10.0.0.1', ['v1', 'primary']) as never);
    await b.agent.service.register(web('web-b', '10.0.0.2', ['v1', 'canary']) as never);
    await b.agent.service.register({
      name: 'db',
      id: 'db-b',
      address: '10.0.0.3',
      port: 5432,
    } as never);
    await eventually(
      async () =>
        ((await a.health.service({ service: 'web', passing: true })) as unknown[]).length === 2 &&
        ((await a.catalog.service.nodes('db')) as unknown[]).length === 1,
      30_000,
    );
  });

  after(async () => {
    await agentA?.stop();
    await agentB?.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('fires events through an agent and lists them on the nodes their filters select', async () => {
    const fired = (await a.event.fire({ name: 'deploy', payload: 'v2', service: '^db$' })) as {
      ID: string;
      Name: string;
      Payload: string;
      ServiceFilter: string;
      Version: number;
      LTime: number;
    };
    expect(fired).to.include({ Name: 'deploy', Payload: 'v2', ServiceFilter: '^db$', Version: 1 });
    expect(fired.LTime).to.be.greaterThan(0);
    await a.event.fire({ name: 'restart', node: '^host-a$' } as never);

    const onB = (await b.event.list()) as { ID: string; Name: string; Payload: string }[];
    expect(onB.map((e) => e.Name)).to.deep.equal(['deploy']);
    expect(onB[0]).to.include({ ID: fired.ID, Payload: 'v2' });
    const onA = (await a.event.list()) as { Name: string }[];
    expect(onA.map((e) => e.Name)).to.deep.equal(['restart']);
    expect((await b.event.list('restart')) as unknown[]).to.deep.equal([]);

    // Bad filters and oversized events are refused, naming what is wrong.
    const noService = await http(agentA.address, 'PUT', '/v1/event/fire/x?tag=v1');
    expect(noService.status).to.equal(400);
    expect(noService.text).to.include('tag');
    const big = await request(`http://${agentA.address}/v1/event/fire/big`, {
      method: 'PUT',
      body: 'x'.repeat(600),
    });
    expect(big.statusCode).to.equal(400);
    expect(await big.body.text()).to.include('512 bytes');
  });

  it('blocks /v1/event/list on its index until an event is fired', async () => {
    const first = await request(`http://${agentB.address}/v1/event/list?name=wake`);
    await first.body.text();
    const index = Number(first.headers['x-consul-index']);
    expect(index).to.be.greaterThan(0);
    const blocked = request(`http://${agentB.address}/v1/event/list?name=wake&index=${index}`);
    let settled = false;
    void blocked.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).to.equal(false);
    await a.event.fire({ name: 'wake', payload: 'now' });
    const woke = await blocked;
    const events = (await woke.body.json()) as { Name: string }[];
    expect(Number(woke.headers['x-consul-index'])).to.be.greaterThan(index);
    expect(events.map((e) => e.Name)).to.deep.equal(['wake']);
  });

  it('creates, reads, updates, executes and explains prepared queries (tags with !, OnlyPassing)', async () => {
    const created = (await a.query.create({
      name: 'web-stable',
      service: { service: 'web', tags: ['v1', '!canary'], onlypassing: true },
      dns: { ttl: '7s' },
    } as never)) as { ID: string };
    expect(created.ID).to.match(/^[0-9a-f-]{36}$/);
    const got = (await b.query.get(created.ID)) as {
      Name: string;
      Service: { Tags: string[]; OnlyPassing: boolean };
    };
    expect(got.Name).to.equal('web-stable');
    expect(got.Service).to.include({ OnlyPassing: true });
    expect(got.Service.Tags).to.deep.equal(['v1', '!canary']);
    const list = (await b.query.list()) as { ID: string }[];
    expect(list.map((q) => q.ID)).to.include(created.ID);

    const run = async (q: string) => (await b.query.execute(q)) as Executed;
    let r = await run('web-stable');
    expect(r).to.include({ Service: 'web', Datacenter: 'dc1', Failovers: 0 });
    expect(r.Nodes.map((e) => e.Service.ID)).to.deep.equal(['web-a']);

    // A warning check: still in without OnlyPassing, out with it.
    await a.agent.check.warn('service:web-a');
    r = await eventually(async () => {
      const x = await run('web-stable');
      return x.Nodes.length === 0 ? x : undefined;
    });
    await a.query.update({
      query: created.ID,
      name: 'web-stable',
      service: { service: 'web', tags: ['v1', '!canary'], onlypassing: false },
    } as never);
    expect((await run(created.ID)).Nodes.map((e) => e.Service.ID)).to.deep.equal(['web-a']);
    await a.agent.check.pass('service:web-a');

    // node-consul's query.explain expects a list (it takes element 0), but Consul answers
    // {Query: ...}: read it directly.
    const explained = (await http(agentB.address, 'GET', '/v1/query/web-stable/explain')).body as {
      Query: { ID: string };
    };
    expect(explained.Query.ID).to.equal(created.ID);
  });

  it('sorts near the agent with stored coordinates, limits, renders templates, reports failover', async () => {
    const near = await http(agentA.address, 'POST', '/v1/query', {
      Name: 'web-near',
      Service: { Service: 'web', Near: '_agent' },
    });
    expect(near.status, near.text).to.equal(200);
    const vec = (x: number) => ({
      Vec: [x, 0, 0, 0, 0, 0, 0, 0],
      Error: 0.2,
      Adjustment: 0,
      Height: 0.0001,
    });
    for (const [node, x] of [
      ['host-a', 0],
      ['host-b', 0.5],
    ] as const) {
      const u = await http(agentA.address, 'PUT', '/v1/coordinate/update', {
        Node: node,
        Segment: '',
        Coord: vec(x),
      });
      expect(u.status, u.text).to.equal(200);
    }
    // `_agent` is the agent the request came through; limit applies after the sort.
    for (const [agent, first] of [
      [agentA, 'host-a'],
      [agentB, 'host-b'],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const r = await http(agent.address, 'GET', '/v1/query/web-near/execute?limit=1');
        expect((r.body as Executed).Nodes.map((e) => e.Node.Node)).to.deep.equal([first]);
      }
    }

    const tpl = await http(agentA.address, 'POST', '/v1/query', {
      Name: 'geo-',
      Template: { Type: 'name_prefix_match', Regexp: '^geo-(.+)$' },
      Service: { Service: '${match(1)}' },
    });
    expect(tpl.status, tpl.text).to.equal(200);
    const db = (await a.query.execute('geo-db')) as Executed;
    expect(db.Service).to.equal('db');
    expect(db.Nodes.map((e) => e.Service.ID)).to.deep.equal(['db-b']);
    const explained = (await http(agentA.address, 'GET', '/v1/query/geo-db/explain')).body as {
      Query: { Service: { Service: string }; Template: { Type: string } };
    };
    expect(explained.Query.Service.Service).to.equal('db');
    expect(explained.Query.Template.Type).to.equal('name_prefix_match');

    const fo = await http(agentA.address, 'POST', '/v1/query', {
      Name: 'gone-fo',
      Service: { Service: 'gone', Failover: { NearestN: 2, Datacenters: ['dc1', 'dc2'] } },
    });
    expect(fo.status, fo.text).to.equal(200);
    const ran = await http(agentA.address, 'GET', '/v1/query/gone-fo/execute');
    expect(ran.body).to.deep.include({ Service: 'gone', Nodes: [], Failovers: 0 });
    expect(ran.headers['x-trellis-failover-skipped']).to.equal('NearestN=2,dc2');

    const missing = await http(agentA.address, 'GET', '/v1/query/nope/execute');
    expect(missing.status).to.equal(404);
    const bad = await http(agentA.address, 'POST', '/v1/query', {
      Name: 'x',
      Service: { Service: 'web', Tags: 'v1' },
    });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Service.Tags');
  });

  it("answers <query>.query.consul from the agent's DNS (A and SRV, templates, NXDOMAIN)", async () => {
    const a4 = await eventually(() =>
      dnsA.resolve4('web-stable.query.consul').catch(() => undefined),
    );
    expect(a4).to.deep.equal(['10.0.0.1']);
    const srv = await dnsA.resolveSrv('web-stable.query.dc1.consul');
    expect(srv.map((s) => [s.name, s.port])).to.deep.equal([['host-a.node.dc1.consul', 8080]]);
    expect(await dnsA.resolve4('geo-db.query.consul')).to.deep.equal(['10.0.0.3']);
    const err = await dnsA.resolve4('gone-fo.query.consul').then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).to.equal('ENOTFOUND');
  });

  it('lists coordinates (the origin for nodes that sent none) and the servers as Raft sees them', async () => {
    const nodes = (await http(agentB.address, 'GET', '/v1/coordinate/nodes')).body as {
      Node: string;
      Coord: { Vec: number[]; Error: number };
    }[];
    const byNode = Object.fromEntries(nodes.map((n) => [n.Node, n.Coord]));
    expect(byNode['host-b']!.Vec[0]).to.equal(0.5);
    expect(byNode.srv1).to.deep.equal({
      Vec: [0, 0, 0, 0, 0, 0, 0, 0],
      Error: 1.5,
      Adjustment: 0,
      Height: 1e-5,
    });
    expect((await http(agentB.address, 'GET', '/v1/coordinate/node/ghost')).status).to.equal(404);
    const dcs = (await http(agentB.address, 'GET', '/v1/coordinate/datacenters')).body as {
      Datacenter: string;
      AreaID: string;
      Coordinates: { Node: string }[];
    }[];
    expect(dcs).to.have.length(1);
    expect(dcs[0]).to.include({ Datacenter: 'dc1', AreaID: 'wan' });
    expect(dcs[0]!.Coordinates.map((c) => c.Node)).to.deep.equal(['srv1.dc1']);
    const bad = await http(agentB.address, 'PUT', '/v1/coordinate/update', {
      Node: 'host-b',
      Coord: { Vec: [1, 2], Error: 0, Adjustment: 0, Height: 0 },
    });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Coord.Vec');

    const leader = (await b.status.leader()) as string;
    const raft = (await http(agentB.address, 'GET', '/v1/operator/raft/configuration')).body as {
      Servers: { Node: string; Address: string; Leader: boolean; Voter: boolean }[];
      Index: number;
    };
    expect(raft.Servers).to.have.length(1);
    expect(raft.Servers[0]).to.include({
      Node: 'srv1',
      Address: leader,
      Leader: true,
      Voter: true,
    });
    expect(raft.Index).to.be.greaterThan(0);
    const health = (await http(agentB.address, 'GET', '/v1/operator/autopilot/health')).body as {
      Healthy: boolean;
      FailureTolerance: number;
      Servers: { Name: string; SerfStatus: string; Healthy: boolean }[];
    };
    expect(health).to.include({ Healthy: true, FailureTolerance: 0 });
    expect(health.Servers[0]).to.include({ Name: 'srv1', SerfStatus: 'alive', Healthy: true });
  });

  it('trellis watch event prints the events for this node as they arrive', async () => {
    const proc = spawn(
      process.execPath,
      [
        TRELLIS_BIN,
        'watch',
        'event',
        '--name',
        'cli-evt',
        '--format',
        'json',
        '--http-addr',
        agentA.address,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await a.event.fire({ name: 'cli-evt', payload: 'one' });
      await eventually(async () => out.includes('"cli-evt"'));
      await a.event.fire({ name: 'cli-evt', payload: 'two' });
      await a.event.fire({ name: 'other', payload: 'x' });
      const lines = await eventually(async () => {
        const l = out.trim().split('\n');
        return l.length >= 2 ? l : undefined;
      });
      const events = lines.map((l) => JSON.parse(l) as { Name: string; Payload: string });
      expect(events.map((e) => Buffer.from(e.Payload, 'base64').toString())).to.deep.equal([
        'one',
        'two',
      ]);
    } finally {
      proc.kill('SIGINT');
      await exited;
    }
  });
});

describe('prepared queries and events survive a server restart', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.removeAll());

  it('keeps a query (and the event ring) across a restart of the server', async () => {
    const dir = tmp.make('eq-restart');
    let srv = await startServerProcess(dir, 'srv1');
    let consul = new Consul({ ...hostPort(srv.address) });
    const { ID } = (await consul.query.create({
      name: 'consul-q',
      service: { service: 'consul' },
    })) as { ID: string };
    await consul.event.fire({ name: 'kept', payload: 'p' });
    await srv.stop();
    srv = await startServerProcess(dir, 'srv1');
    try {
      consul = new Consul({ ...hostPort(srv.address) });
      const q = (await consul.query.get(ID)) as { Name: string };
      expect(q.Name).to.equal('consul-q');
      const r = (await consul.query.execute('consul-q')) as Executed;
      expect(r.Nodes.map((e) => e.Node.Node)).to.deep.equal(['srv1']);
      const events = (await consul.event.list('kept')) as { Payload: string }[];
      expect(events.map((e) => e.Payload)).to.deep.equal(['p']);
    } finally {
      await srv.stop();
    }
  });
});
