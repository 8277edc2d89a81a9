import { expect } from 'chai';
import { createClient, HttpStatusError, type TrellisClient } from '../../../src/client/index.js';
import { routes, startFakeApi, type FakeApi, type FakeHandler } from './fake-api.js';

const WEB = { Kind: 'service-defaults', Name: 'web', Protocol: 'http' };

describe('client.configEntries', () => {
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

  it('set PUTs the entry to /v1/config with cas, and returns the answer', async () => {
    await setup({ 'PUT /v1/config': (req) => ({ json: req.query.get('cas') !== '1' }) });
    expect(await client.configEntries.set(WEB)).to.equal(true);
    expect(JSON.parse(fake.requests[0]!.body.toString())).to.deep.equal(WEB);
    expect(fake.requests[0]!.query.has('cas')).to.equal(false);
    expect(await client.configEntries.set(WEB, { cas: 1 })).to.equal(false);
    expect(await client.configEntries.set(WEB, { cas: 0 })).to.equal(true);
    expect(fake.requests[2]!.query.get('cas')).to.equal('0');
  });

  it('set refuses an entry without a Kind before sending', async () => {
    await setup({});
    const err = await client.configEntries.set({ Kind: '', Name: 'web' }).catch((e: unknown) => e);
    expect((err as Error).message).to.contain('no Kind');
    expect(fake.requests).to.have.length(0);
  });

  it('set passes a 400 from the server on as an error', async () => {
    await setup({
      'PUT /v1/config': () => ({
        status: 400,
        text: 'Request decoding failed: invalid config key "Protcol"',
      }),
    });
    const err = await client.configEntries.set(WEB).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HttpStatusError);
    expect((err as HttpStatusError).status).to.equal(400);
  });

  it('get returns the entry, or null on 404', async () => {
    await setup({
      'GET /v1/config/service-defaults/web': () => ({ json: WEB, index: 8 }),
      'GET /v1/config/service-defaults/nope': () => ({
        status: 404,
        text: 'Config entry not found for "service-defaults" / "nope"',
      }),
    });
    expect(await client.configEntries.get('service-defaults', 'web')).to.deep.equal({
      value: WEB,
      index: 8,
    });
    expect((await client.configEntries.get('service-defaults', 'nope')).value).to.equal(null);
  });

  it('list reads a kind; delete sends cas and reads true/false or {}', async () => {
    let answer: unknown = {};
    await setup({
      'GET /v1/config/service-defaults': () => ({ json: [WEB] }),
      'DELETE /v1/config/service-defaults/web': () => ({ json: answer }),
    });
    expect((await client.configEntries.list('service-defaults')).value).to.deep.equal([WEB]);
    expect(await client.configEntries.delete('service-defaults', 'web')).to.equal(true);
    answer = false;
    expect(await client.configEntries.delete('service-defaults', 'web', { cas: 3 })).to.equal(
      false,
    );
    expect(fake.requests[2]!.query.get('cas')).to.equal('3');
    expect(fake.requests[2]!.method).to.equal('DELETE');
  });

  it('a 403 is a permission error', async () => {
    await setup({
      'GET /v1/config/proxy-defaults': () => ({ status: 403, text: 'Permission denied' }),
    });
    const err = await client.configEntries.list('proxy-defaults').catch((e: unknown) => e);
    expect((err as HttpStatusError).status).to.equal(403);
  });
});
