import { expect } from 'chai';
import { createClient, decodeValue, type TrellisClient } from '../../../src/client/index.js';
import { routes, startFakeApi, type FakeApi, type FakeHandler } from './fake-api.js';

const pair = (key: string, value: string | null, modify = 3) => ({
  Key: key,
  CreateIndex: 1,
  ModifyIndex: modify,
  LockIndex: 0,
  Flags: 0,
  Value: value === null ? null : Buffer.from(value).toString('base64'),
});

describe('client API helpers', () => {
  let fake: FakeApi;
  let client: TrellisClient;
  afterEach(async () => {
    await client?.close();
    await fake?.close();
  });

  async function setup(table: Record<string, FakeHandler>): Promise<void> {
    fake = await startFakeApi(routes(table));
    client = createClient({ addresses: [fake.address] });
  }

  it('kv.get returns one pair, or null with the index on a 404', async () => {
    await setup({
      'GET /v1/kv/a/b': () => ({ json: [pair('a/b', 'hello')], index: 9 }),
      'GET /v1/kv/missing': () => ({ status: 404, index: 11 }),
    });
    const hit = await client.kv.get('a/b');
    expect(hit.index).to.equal(9);
    expect(decodeValue(hit.value!).toString()).to.equal('hello');
    expect(await client.kv.get('missing')).to.deep.equal({ value: null, index: 11 });
  });

  it('kv.get with recurse returns every pair', async () => {
    await setup({
      'GET /v1/kv/cfg/': (req) => ({
        json: req.query.has('recurse') ? [pair('cfg/a', '1'), pair('cfg/b', null)] : [],
        index: 2,
      }),
    });
    const res = await client.kv.get('cfg/', { recurse: true });
    expect(res.value!.map((p) => p.Key)).to.deep.equal(['cfg/a', 'cfg/b']);
    expect(decodeValue(res.value![1]!)).to.have.length(0);
  });

  it('kv.put sends the raw value with cas and flags and returns the answer', async () => {
    await setup({ 'PUT /v1/kv/x': (req) => ({ json: req.query.get('cas') !== '0' }) });
    expect(await client.kv.put('x', 'v1', { cas: 5, flags: 3 })).to.equal(true);
    expect(await client.kv.put('x', Buffer.from([0, 255]), { cas: 0 })).to.equal(false);
    const [first, second] = fake.requests;
    expect(first!.body.toString()).to.equal('v1');
    expect(first!.query.get('cas')).to.equal('5');
    expect(first!.query.get('flags')).to.equal('3');
    expect([...second!.body]).to.deep.equal([0, 255]);
  });

  it('kv.delete and kv.keys pass recurse, cas and separator', async () => {
    await setup({
      'DELETE /v1/kv/p/': () => ({ json: true }),
      'GET /v1/kv/p/': (req) => ({
        json: req.query.get('separator') === '/' ? ['p/a/'] : ['p/a/x'],
      }),
      'GET /v1/kv/none': () => ({ status: 404 }),
    });
    expect(await client.kv.delete('p/', { recurse: true })).to.equal(true);
    expect(fake.requests[0]!.query.get('recurse')).to.equal('true');
    expect((await client.kv.keys('p/', '/')).value).to.deep.equal(['p/a/']);
    expect(fake.requests[1]!.query.has('keys')).to.equal(true);
    expect((await client.kv.keys('none')).value).to.deep.equal([]);
  });

  it('percent-encodes path segments but keeps KV slashes', async () => {
    await setup({});
    await client.catalog.service('a b/c').catch(() => undefined);
    await client.kv.get('dir/x y').catch(() => undefined);
    expect(fake.requests.map((r) => r.path)).to.deep.equal([
      '/v1/catalog/service/a%20b%2Fc',
      '/v1/kv/dir/x%20y',
    ]);
  });

  it('agent helpers hit the agent endpoints', async () => {
    await setup({
      'PUT /v1/agent/check/warn/mem': () => ({}),
      'PUT /v1/agent/service/deregister/web-1': () => ({}),
      'PUT /v1/agent/check/register': () => ({}),
      'GET /v1/agent/services': () => ({ json: { web: { ID: 'web', Service: 'web' } } }),
    });
    await client.agent.ttl('mem', 'warn', 'high');
    await client.agent.deregisterService('web-1');
    await client.agent.registerCheck({ Name: 'disk', TTL: '30s' });
    const services = await client.agent.services();
    expect(Object.keys(services.value)).to.deep.equal(['web']);
    expect(fake.requests[0]!.query.get('note')).to.equal('high');
    expect(JSON.parse(fake.requests[2]!.body.toString())).to.deep.equal({
      Name: 'disk',
      TTL: '30s',
    });
  });

  it('catalog and health helpers decode their resources', async () => {
    await setup({
      'GET /v1/catalog/service/web': () => ({ json: [{ ServiceID: 'web-1' }], index: 4 }),
      'GET /v1/catalog/node/n1': () => ({ json: null, index: 4 }),
      'GET /v1/health/state/critical': () => ({ json: [{ CheckID: 'c' }], index: 5 }),
      'PUT /v1/catalog/register': () => ({ json: true }),
    });
    expect((await client.catalog.service('web', { tag: 'v2' })).value).to.have.length(1);
    expect(fake.requests[0]!.query.get('tag')).to.equal('v2');
    expect((await client.catalog.node('n1')).value).to.equal(null);
    expect((await client.health.state('critical')).index).to.equal(5);
    expect(await client.catalog.register({ Node: 'n1', Address: '10.0.0.1' })).to.equal(true);
  });

  it('session helpers create, read, renew and destroy', async () => {
    const session = { ID: 's1', Name: 'lock', TTL: '15s' };
    await setup({
      'PUT /v1/session/create': () => ({ json: { ID: 's1' } }),
      'GET /v1/session/info/s1': () => ({ json: [session], index: 3 }),
      'GET /v1/session/info/gone': () => ({ json: null, index: 3 }),
      'PUT /v1/session/renew/s1': () => ({ json: [session] }),
      'PUT /v1/session/renew/gone': () => ({ status: 404, text: 'Session id not found' }),
      'PUT /v1/session/destroy/s1': () => ({ json: true }),
      'GET /v1/session/list': () => ({ json: [session], index: 3 }),
    });
    expect(await client.session.create({ Name: 'lock', TTL: '15s' })).to.equal('s1');
    expect((await client.session.info('s1')).value).to.deep.equal(session);
    expect((await client.session.info('gone')).value).to.equal(null);
    expect(await client.session.renew('s1')).to.deep.equal(session);
    expect(await client.session.renew('gone')).to.equal(null);
    expect((await client.session.list()).value).to.have.length(1);
    expect(await client.session.destroy('s1')).to.equal(true);
  });
});
