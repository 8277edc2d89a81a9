import { expect } from 'chai';
import { MeshError } from '../../../src/core/index.js';
import {
  blockingTimeoutMs,
  createClient,
  parseIndex,
  type TrellisClient,
} from '../../../src/client/index.js';
import { routes, startFakeApi, type FakeApi } from './fake-api.js';

describe('client blocking queries', () => {
  let fake: FakeApi;
  let client: TrellisClient;
  afterEach(async () => {
    await client?.close();
    await fake?.close();
  });

  async function setup(table: Parameters<typeof routes>[0]): Promise<void> {
    fake = await startFakeApi(routes(table));
    client = createClient({ addresses: [fake.address] });
  }

  it('returns the X-Consul-Index with the value', async () => {
    await setup({ 'GET /v1/catalog/services': () => ({ json: { web: ['v1'] }, index: 42 }) });
    const res = await client.catalog.services();
    expect(res).to.deep.equal({ value: { web: ['v1'] }, index: 42 });
  });

  it('gives index 0 when the server sends none', async () => {
    await setup({ 'GET /v1/agent/members': () => ({ json: [] }) });
    expect((await client.agent.members()).index).to.equal(0);
  });

  it('sends index and wait, and none of them for a plain read', async () => {
    await setup({ 'GET /v1/health/service/web': () => ({ json: [], index: 8 }) });
    await client.health.service('web', { index: 7, wait: '2s', passing: true, tag: ['a', 'b'] });
    await client.health.service('web');
    const [blocking, plain] = fake.requests;
    expect(blocking!.query.get('index')).to.equal('7');
    expect(blocking!.query.get('wait')).to.equal('2s');
    expect(blocking!.query.get('passing')).to.equal('true');
    expect(blocking!.query.getAll('tag')).to.deep.equal(['a', 'b']);
    expect([...plain!.query.keys()]).to.deep.equal([]);
  });

  it('refuses a wait that is not a duration, before sending anything', async () => {
    await setup({});
    const err = await client.catalog.nodes({ index: 1, wait: 'soon' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).status).to.equal(400);
    expect(fake.requests).to.have.length(0);
  });

  it('waits past the client timeout for a blocking call', async () => {
    await setup({
      'GET /v1/kv/k': async (req) => {
        if (req.query.get('index')) await new Promise((r) => setTimeout(r, 300));
        return { json: [{ Key: 'k', Value: null }], index: 5 };
      },
    });
    await client.close();
    // 100ms would cut the held query short; the blocking timeout (wait + wait/16 + 5s) does not.
    client = createClient({ addresses: [fake.address], timeoutMs: 100 });
    const res = await client.kv.get('k', { index: 4, wait: '1s' });
    expect(res.index).to.equal(5);
  });

  it('computes the blocking timeout as wait + wait/16 + 5s', () => {
    expect(blockingTimeoutMs(16_000)).to.equal(16_000 + 1_000 + 5_000);
    expect(blockingTimeoutMs(300_000)).to.equal(300_000 + 18_750 + 5_000);
  });

  it('parses index headers strictly', () => {
    expect(parseIndex('12')).to.equal(12);
    expect(parseIndex(' 7 ')).to.equal(7);
    expect(parseIndex(undefined)).to.equal(undefined);
    expect(parseIndex('-1')).to.equal(undefined);
    expect(parseIndex('1e3')).to.equal(undefined);
    expect(parseIndex('99999999999999999999')).to.equal(undefined);
  });
});
