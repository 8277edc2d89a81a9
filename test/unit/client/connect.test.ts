import { expect } from 'chai';
import { createClient, HttpStatusError, type TrellisClient } from '../../../src/client/index.js';
import { routes, startFakeApi, type FakeApi, type FakeHandler } from './fake-api.js';

const IXN = {
  SourceName: 'web',
  DestinationName: 'api',
  SourceType: 'consul',
  Action: 'allow',
  Precedence: 9,
  CreateIndex: 3,
  ModifyIndex: 3,
};

const ROOTS = {
  ActiveRootID: 'aa:bb',
  TrustDomain: '11111111-2222-3333-4444-555555555555.consul',
  Roots: [{ ID: 'aa:bb', Name: 'Trellis CA Root Cert', Active: true, RootCert: 'PEM' }],
};

describe('client.connect', () => {
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
  const query = (i: number) => Object.fromEntries(fake.requests[i]!.query);

  it('caRoots is a blocking read of /v1/connect/ca/roots', async () => {
    await setup({ 'GET /v1/connect/ca/roots': () => ({ json: ROOTS, index: 12 }) });
    const res = await client.connect.caRoots({ index: 11, wait: '1s' });
    expect(res).to.deep.equal({ value: ROOTS, index: 12 });
    expect(query(0)).to.deep.equal({ index: '11', wait: '1s' });
  });

  it('caGetConfig and caSetConfig use /v1/connect/ca/configuration', async () => {
    const config = {
      Provider: 'consul',
      Config: { LeafCertTTL: '72h' },
      CreateIndex: 1,
      ModifyIndex: 1,
    };
    await setup({
      'GET /v1/connect/ca/configuration': () => ({ json: config }),
      'PUT /v1/connect/ca/configuration': () => ({}),
    });
    expect((await client.connect.caGetConfig()).value).to.deep.equal(config);
    await client.connect.caSetConfig({ Provider: 'consul', Config: { LeafCertTTL: '24h' } });
    expect(JSON.parse(fake.requests[1]!.body.toString())).to.deep.equal({
      Provider: 'consul',
      Config: { LeafCertTTL: '24h' },
    });
  });

  it('caSetConfig throws the 403 of a token without operator:write', async () => {
    await setup({
      'PUT /v1/connect/ca/configuration': () => ({ status: 403, text: 'Permission denied' }),
    });
    const err = await client.connect
      .caSetConfig({ Provider: 'consul', Config: {} })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HttpStatusError);
    expect((err as HttpStatusError).status).to.equal(403);
  });

  it('leafCert reads the agent endpoint for a service', async () => {
    await setup({
      'GET /v1/agent/connect/ca/leaf/web': () => ({ json: { Service: 'web', CertPEM: 'x' } }),
    });
    expect((await client.connect.leafCert('web')).value.Service).to.equal('web');
  });

  it('intentionList decodes the list (null as [])', async () => {
    let answer: unknown = [IXN];
    await setup({ 'GET /v1/connect/intentions': () => ({ json: answer, index: 4 }) });
    expect(await client.connect.intentionList()).to.deep.equal({ value: [IXN], index: 4 });
    answer = null;
    expect((await client.connect.intentionList()).value).to.deep.equal([]);
  });

  it('intentionGetExact passes source and destination, and gives null on 404', async () => {
    await setup({
      'GET /v1/connect/intentions/exact': (req) =>
        req.query.get('source') === 'web'
          ? { json: IXN, index: 3 }
          : { status: 404, text: 'Intention not found' },
    });
    expect((await client.connect.intentionGetExact('web', 'api')).value).to.deep.equal(IXN);
    expect(query(0)).to.deep.equal({ source: 'web', destination: 'api' });
    expect((await client.connect.intentionGetExact('db', 'api')).value).to.equal(null);
  });

  it('intentionUpsert PUTs the body to the exact pair', async () => {
    await setup({ 'PUT /v1/connect/intentions/exact': () => ({ json: true }) });
    const permissions = [{ Action: 'allow' as const, HTTP: { PathPrefix: '/api' } }];
    expect(await client.connect.intentionUpsert('*', 'api', { Permissions: permissions })).to.equal(
      true,
    );
    expect(query(0)).to.deep.equal({ source: '*', destination: 'api' });
    expect(JSON.parse(fake.requests[0]!.body.toString())).to.deep.equal({
      Permissions: permissions,
    });
  });

  it('intentionDeleteExact DELETEs the pair; an empty source is refused locally', async () => {
    await setup({ 'DELETE /v1/connect/intentions/exact': () => ({}) });
    await client.connect.intentionDeleteExact('web', 'api');
    expect(fake.requests[0]!.method).to.equal('DELETE');
    const err = await client.connect.intentionDeleteExact('', 'api').catch((e: unknown) => e);
    expect((err as Error).message).to.equal('Missing intention source');
    expect(fake.requests).to.have.length(1);
  });

  it('intentionCheck sends path, method and repeated header parameters', async () => {
    const result = {
      Allowed: false,
      Reason: 'intention web => api, permission 2 (deny)',
      Intention: IXN,
      Permission: 2,
      Default: false,
    };
    await setup({ 'GET /v1/connect/intentions/check': () => ({ json: result }) });
    const res = await client.connect.intentionCheck('web', 'api', {
      path: '/admin',
      method: 'POST',
      headers: { 'x-user': 'bob', 'x-team': 'a:b' },
    });
    expect(res.value).to.deep.equal(result);
    const q = fake.requests[0]!.query;
    expect(q.get('source')).to.equal('web');
    expect(q.get('destination')).to.equal('api');
    expect(q.get('path')).to.equal('/admin');
    expect(q.get('method')).to.equal('POST');
    expect(q.getAll('header')).to.deep.equal(['x-user:bob', 'x-team:a:b']);
  });

  it('intentionCheck without a request sends only the pair (Consul answers Allowed only)', async () => {
    await setup({ 'GET /v1/connect/intentions/check': () => ({ json: { Allowed: true } }) });
    expect((await client.connect.intentionCheck('web', 'api')).value).to.deep.equal({
      Allowed: true,
    });
    expect(query(0)).to.deep.equal({ source: 'web', destination: 'api' });
  });

  it('intentionCheck refuses a header name with a colon', async () => {
    await setup({});
    const err = await client.connect
      .intentionCheck('web', 'api', { headers: { 'a:b': 'c' } })
      .catch((e: unknown) => e);
    expect((err as Error).message).to.contain('Invalid header name');
    expect(fake.requests).to.have.length(0);
  });

  it('intentionMatch asks by source or destination and returns the map', async () => {
    await setup({
      'GET /v1/connect/intentions/match': (req) => ({
        json: Object.fromEntries(req.query.getAll('name').map((n) => [n, [IXN]])),
      }),
    });
    const res = await client.connect.intentionMatch('destination', 'api');
    expect(res.value).to.deep.equal({ api: [IXN] });
    expect(query(0)).to.deep.equal({ by: 'destination', name: 'api' });
    const two = await client.connect.intentionMatch('source', ['web', 'db']);
    expect(Object.keys(two.value)).to.deep.equal(['web', 'db']);
  });
});
