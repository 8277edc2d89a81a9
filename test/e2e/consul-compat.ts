/**
 * The `consul` npm package, used as a user would, against a running Trellis API. Shared by the
 * dev-mode and the server + agents suites.
 */
import Consul from 'consul';
import { expect } from 'chai';
import { eventually } from '../helpers/trellis-process.js';

type ConsulClient = InstanceType<typeof Consul>;

export interface CompatTarget {
  /** A consul client pointed at the agent that registers services. */
  consul(): ConsulClient;
  /** A second agent's client (or the same in dev mode). */
  other(): ConsulClient;
  /** The node name services registered through consul() land on. */
  node: string;
}

interface ServiceEntryLike {
  Node: { Node: string };
  Service: { ID: string; Service: string; Tags: string[] };
  Checks: { CheckID: string; Status: string }[];
}

export function consulCompatSuite(t: CompatTarget): void {
  it('registers a service with a TTL check that turns passing', async () => {
    const consul = t.consul();
    await consul.agent.service.register({
      name: 'web',
      id: 'web-1',
      port: 8080,
      tags: ['v1'],
      check: { ttl: '30s', notes: 'ttl' },
    } as never);
    const services = (await consul.agent.service.list()) as Record<string, { Service: string }>;
    expect(services['web-1']?.Service).to.equal('web');

    // An agent write answers once the catalog has it (as Consul's agent syncs before replying).
    const list = (await t.other().catalog.service.list()) as Record<string, string[]>;
    expect(list.web).to.include('v1');
    const before = (await t
      .other()
      .health.service({ service: 'web', passing: true })) as ServiceEntryLike[];
    expect(before.map((e) => e.Service.ID)).to.not.include('web-1');

    await consul.agent.check.pass({ id: 'service:web-1', note: 'all good' } as never);
    const entries = (await t
      .other()
      .health.service({ service: 'web', passing: true })) as ServiceEntryLike[];
    const mine = entries.find((e) => e.Service.ID === 'web-1')!;
    expect(mine.Node.Node).to.equal(t.node);
    expect(mine.Checks.map((c) => c.CheckID)).to.include.members(['serfHealth', 'service:web-1']);
    const nodes = (await consul.catalog.node.list()) as { Node: string }[];
    expect(nodes.map((n) => n.Node)).to.include(t.node);
  });

  it('deregisters a service and its checks', async () => {
    const consul = t.consul();
    await consul.agent.service.register({
      name: 'tmp',
      id: 'tmp-1',
      port: 9000,
      check: { ttl: '10s' },
    } as never);
    expect(await t.other().catalog.service.nodes('tmp')).to.have.length(1);
    await consul.agent.service.deregister('tmp-1');
    expect(await t.other().catalog.service.nodes('tmp')).to.have.length(0);
    const checks = (await t.other().health.checks('tmp')) as unknown[];
    expect(checks).to.have.length(0);
  });

  it('registers and deregisters external nodes through the catalog', async () => {
    const consul = t.consul();
    await consul.catalog.register({
      node: 'external-db',
      address: '198.18.5.5',
      service: { service: 'db', id: 'db-1', port: 5432, tags: ['primary'] },
      check: { name: 'db up', status: 'passing', serviceid: 'db-1' },
    } as never);
    const db = (await t.other().catalog.service.nodes('db')) as {
      Node: string;
      ServicePort: number;
      ServiceTags: string[];
    }[];
    expect(db).to.have.length(1);
    expect(db[0]).to.include({ Node: 'external-db', ServicePort: 5432 });
    const healthy = (await t
      .other()
      .health.service({ service: 'db', passing: true })) as ServiceEntryLike[];
    expect(healthy).to.have.length(1);
    await consul.catalog.deregister({ node: 'external-db' } as never);
    expect(await t.other().catalog.service.nodes('db')).to.deep.equal([]);
  });

  it('does KV get, set with cas, keys with a separator and recursive delete', async () => {
    const consul = t.consul();
    expect(await consul.kv.set('app/config/port', '8080')).to.equal(true);
    const got = (await consul.kv.get('app/config/port')) as { Value: string; ModifyIndex: number };
    expect(got.Value).to.equal('8080');
    expect(
      await consul.kv.set({
        key: 'app/config/port',
        value: '9090',
        cas: String(got.ModifyIndex + 1000),
      } as never),
    ).to.not.equal(true); // node-consul turns a `false` body into undefined
    expect(
      await consul.kv.set({
        key: 'app/config/port',
        value: '9090',
        cas: String(got.ModifyIndex),
      } as never),
    ).to.equal(true);
    expect(((await consul.kv.get('app/config/port')) as { Value: string }).Value).to.equal('9090');
    expect(
      await consul.kv.set({ key: 'app/config/port', value: 'x', cas: '0' } as never),
    ).to.not.equal(true); // node-consul turns a `false` body into undefined
    await consul.kv.set('app/config/host', 'h');
    await consul.kv.set('app/flags/a', '1');
    expect(await consul.kv.keys({ key: 'app/', separator: '/' } as never)).to.deep.equal([
      'app/config/',
      'app/flags/',
    ]);
    const all = (await consul.kv.get({ key: 'app/', recurse: true } as never)) as unknown as {
      Key: string;
    }[];
    expect(all.map((e) => e.Key)).to.deep.equal([
      'app/config/host',
      'app/config/port',
      'app/flags/a',
    ]);
    expect(await consul.kv.get('missing/key')).to.equal(undefined);
    await consul.kv.del({ key: 'app/', recurse: true } as never);
    expect(await consul.kv.get({ key: 'app/', recurse: true } as never)).to.equal(undefined);
  });

  it('takes and releases a KV lock with sessions', async () => {
    const consul = t.consul();
    const s1 = (await consul.session.create({ name: 'lock-a', ttl: '15s' } as never)) as {
      ID: string;
    };
    const s2 = (await consul.session.create({ name: 'lock-b' } as never)) as { ID: string };
    expect(
      await consul.kv.set({ key: 'locks/leader', value: 'a', acquire: s1.ID } as never),
    ).to.equal(true);
    expect(
      await consul.kv.set({ key: 'locks/leader', value: 'b', acquire: s2.ID } as never),
    ).to.not.equal(true); // node-consul turns a `false` body into undefined
    const held = (await consul.kv.get('locks/leader')) as unknown as {
      Session: string;
      LockIndex: number;
    };
    expect(held.Session).to.equal(s1.ID);
    expect(held.LockIndex).to.equal(1);
    expect(
      await consul.kv.set({ key: 'locks/leader', value: 'a', release: s1.ID } as never),
    ).to.equal(true);
    expect(
      await consul.kv.set({ key: 'locks/leader', value: 'b', acquire: s2.ID } as never),
    ).to.equal(true);
    const info = (await consul.session.info(s1.ID)) as
      { Name: string }[] | { Name: string } | undefined;
    expect(JSON.stringify(info)).to.include('lock-a');
    const renewed = (await consul.session.renew(s1.ID)) as unknown;
    expect(JSON.stringify(renewed)).to.include(s1.ID);
    await consul.session.destroy(s2.ID);
    const after = (await consul.kv.get('locks/leader')) as { Session?: string };
    expect(after.Session).to.equal(undefined);
    await consul.session.destroy(s1.ID);
    const list = (await consul.session.list()) as { ID: string }[];
    expect(list.map((s) => s.ID)).to.not.include.members([s1.ID, s2.ID]);
  });

  it('runs KV transactions atomically', async () => {
    const consul = t.consul();
    const ok = (await consul.transaction.create([
      { KV: { Verb: 'set', Key: 'txn/a', Value: Buffer.from('1').toString('base64') } },
      { KV: { Verb: 'set', Key: 'txn/b', Value: Buffer.from('2').toString('base64') } },
      { KV: { Verb: 'get', Key: 'txn/a' } },
    ] as never)) as { Results: { KV: { Key: string; Value: string | null } }[] };
    expect(ok.Results).to.have.length(3);
    expect(Buffer.from(ok.Results[2]!.KV.Value!, 'base64').toString()).to.equal('1');
    let failed: unknown;
    try {
      await consul.transaction.create([
        { KV: { Verb: 'set', Key: 'txn/c', Value: Buffer.from('3').toString('base64') } },
        { KV: { Verb: 'check-not-exists', Key: 'txn/a' } },
      ] as never);
    } catch (err) {
      failed = err;
    }
    expect(failed, 'a failing transaction is rejected (409)').to.be.instanceOf(Error);
    expect(await consul.kv.get('txn/c')).to.equal(undefined);
  });

  it('watches a key and sees every change', async () => {
    const consul = t.consul();
    await consul.kv.set('watched/key', 'v0');
    const seen: string[] = [];
    const watch = consul.watch({
      method: consul.kv.get,
      options: { key: 'watched/key', wait: '5s' } as never,
    });
    watch.on('change', (data: { Value?: string } | undefined) =>
      seen.push(data?.Value ?? '<deleted>'),
    );
    watch.on('error', () => {});
    try {
      await eventually(async () => seen.includes('v0'));
      for (const v of ['v1', 'v2', 'v3']) {
        await consul.kv.set('watched/key', v);
        await eventually(async () => seen.includes(v));
      }
      await consul.kv.del('watched/key');
      await eventually(async () => seen.includes('<deleted>'));
      // Each change exactly once, in order: the key's index moves only when the key is written.
      expect(seen).to.deep.equal(['v0', 'v1', 'v2', 'v3', '<deleted>']);
    } finally {
      watch.end();
    }
  });

  it('watches a service and sees every change', async () => {
    const consul = t.consul();
    const snapshots: string[][] = [];
    const watch = consul.watch({
      method: consul.health.service,
      options: { service: 'watched', wait: '5s' } as never,
    });
    watch.on('change', (data: ServiceEntryLike[]) =>
      snapshots.push(data.map((e) => e.Service.ID).sort()),
    );
    watch.on('error', () => {});
    try {
      await eventually(async () => snapshots.length >= 1);
      await consul.agent.service.register({ name: 'watched', id: 'watched-1', port: 1 } as never);
      await eventually(async () => snapshots.some((s) => s.includes('watched-1')));
      await consul.agent.service.register({ name: 'watched', id: 'watched-2', port: 2 } as never);
      await eventually(async () => snapshots.some((s) => s.length === 2));
      await consul.agent.service.deregister('watched-1');
      await eventually(
        async () => JSON.stringify(snapshots[snapshots.length - 1]) === '["watched-2"]',
      );
      await consul.agent.service.deregister('watched-2');
      await eventually(async () => snapshots[snapshots.length - 1]!.length === 0);
    } finally {
      watch.end();
    }
  });

  it('answers status, self and members the way Consul clients expect', async () => {
    const consul = t.consul();
    expect(await consul.status.leader())
      .to.be.a('string')
      .and.not.equal('');
    expect(await consul.status.peers())
      .to.be.an('array')
      .with.length.greaterThan(0);
    const self = (await consul.agent.self()) as {
      Config: { Datacenter: string; NodeName: string };
    };
    expect(self.Config.Datacenter).to.equal('dc1');
    expect(self.Config.NodeName).to.equal(t.node);
    const members = (await consul.agent.members()) as { Name: string; Status: number }[];
    expect(members.find((m) => m.Name === t.node)?.Status).to.equal(1);
    expect(await consul.catalog.datacenters()).to.deep.equal(['dc1']);
    const services = (await consul.catalog.service.list()) as Record<string, string[]>;
    expect(services.consul).to.deep.equal([]);
  });
}
