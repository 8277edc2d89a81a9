import { expect } from 'chai';
import { createClient, HttpStatusError, type TrellisClient } from '../../../src/client/index.js';
import { routes, startFakeApi, type FakeApi, type FakeHandler } from './fake-api.js';

const TOKEN = {
  AccessorID: 'acc-1',
  SecretID: 'sec-1',
  Description: 'Bootstrap Token (Global Management)',
  Policies: [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }],
  Local: false,
  CreateTime: '2024-05-01T10:00:00Z',
  CreateIndex: 5,
  ModifyIndex: 5,
};

const POLICY = {
  ID: 'pol-1',
  Name: 'web-write',
  Description: '',
  Rules: 'service "web" { policy = "write" }',
  CreateIndex: 7,
  ModifyIndex: 7,
};

describe('client.acl', () => {
  let fake: FakeApi;
  let client: TrellisClient;
  afterEach(async () => {
    await client?.close();
    await fake?.close();
  });

  async function setup(table: Record<string, FakeHandler>, token?: string): Promise<void> {
    fake = await startFakeApi(routes(table));
    client = createClient({ addresses: [fake.address], token });
  }
  const body = (i: number) => JSON.parse(fake.requests[i]!.body.toString()) as unknown;

  it('bootstrap PUTs /v1/acl/bootstrap and decodes the token', async () => {
    await setup({ 'PUT /v1/acl/bootstrap': () => ({ json: TOKEN }) });
    expect(await client.acl.bootstrap()).to.deep.equal(TOKEN);
    expect(fake.requests[0]!.method).to.equal('PUT');
  });

  it('bootstrap a second time throws the 403 with the server message', async () => {
    await setup({
      'PUT /v1/acl/bootstrap': () => ({ status: 403, text: 'ACL bootstrap no longer allowed' }),
    });
    const err = await client.acl.bootstrap().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HttpStatusError);
    expect((err as HttpStatusError).status).to.equal(403);
    expect((err as HttpStatusError).message).to.equal('ACL bootstrap no longer allowed');
  });

  it('tokenCreate sends the body and the client token', async () => {
    await setup({ 'PUT /v1/acl/token': () => ({ json: { ...TOKEN, AccessorID: 'acc-2' } }) }, 's3');
    const token = await client.acl.tokenCreate({
      Description: 'web',
      Policies: [{ Name: 'web-write' }],
      ServiceIdentities: [{ ServiceName: 'web' }],
      ExpirationTTL: '1h',
    });
    expect(token.AccessorID).to.equal('acc-2');
    expect(body(0)).to.deep.equal({
      Description: 'web',
      Policies: [{ Name: 'web-write' }],
      ServiceIdentities: [{ ServiceName: 'web' }],
      ExpirationTTL: '1h',
    });
    expect(fake.requests[0]!.headers['x-consul-token']).to.equal('s3');
  });

  it('tokenRead returns the token, or null on 404', async () => {
    await setup({
      'GET /v1/acl/token/acc-1': () => ({ json: TOKEN, index: 5 }),
      'GET /v1/acl/token/gone': () => ({ status: 404, text: 'ACL not found' }),
    });
    expect(await client.acl.tokenRead('acc-1')).to.deep.equal({ value: TOKEN, index: 5 });
    expect((await client.acl.tokenRead('gone')).value).to.equal(null);
  });

  it('tokenRead refuses an empty accessor and percent-encodes it', async () => {
    await setup({});
    await client.acl.tokenRead('a/b').catch(() => undefined);
    expect(fake.requests[0]!.path).to.equal('/v1/acl/token/a%2Fb');
    const err = await client.acl.tokenRead('').catch((e: unknown) => e);
    expect((err as Error).message).to.contain('Missing accessor id');
  });

  it('tokenSelf reads /v1/acl/token/self; 403 is thrown', async () => {
    await setup({
      'GET /v1/acl/token/self': (req) =>
        req.headers['x-consul-token'] === 'good'
          ? { json: TOKEN }
          : { status: 403, text: 'ACL not found' },
    });
    await client.close();
    client = createClient({ addresses: [fake.address], token: 'good' });
    expect((await client.acl.tokenSelf()).value.AccessorID).to.equal('acc-1');
    await client.close();
    client = createClient({ addresses: [fake.address], token: 'bad' });
    const err = await client.acl.tokenSelf().catch((e: unknown) => e);
    expect((err as HttpStatusError).status).to.equal(403);
  });

  it('tokenUpdate PUTs to the accessor with the AccessorID in the body', async () => {
    await setup({ 'PUT /v1/acl/token/acc-1': () => ({ json: TOKEN }) });
    await client.acl.tokenUpdate('acc-1', { Description: 'renamed' });
    expect(body(0)).to.deep.equal({ Description: 'renamed', AccessorID: 'acc-1' });
  });

  it('tokenDelete DELETEs and returns the answer', async () => {
    await setup({ 'DELETE /v1/acl/token/acc-1': () => ({ json: true }) });
    expect(await client.acl.tokenDelete('acc-1')).to.equal(true);
    expect(fake.requests[0]!.method).to.equal('DELETE');
  });

  it('tokenList passes the policy filter and turns null into []', async () => {
    await setup({
      'GET /v1/acl/tokens': (req) => ({ json: req.query.get('policy') === 'p1' ? [TOKEN] : null }),
    });
    expect((await client.acl.tokenList({ policy: 'p1' })).value).to.have.length(1);
    expect((await client.acl.tokenList()).value).to.deep.equal([]);
    expect(fake.requests[1]!.query.has('policy')).to.equal(false);
  });

  it('policy create, read, read by name, update, delete and list', async () => {
    await setup({
      'PUT /v1/acl/policy': () => ({ json: POLICY }),
      'GET /v1/acl/policy/pol-1': () => ({ json: POLICY }),
      'GET /v1/acl/policy/name/web-write': () => ({ json: POLICY }),
      'GET /v1/acl/policy/name/nope': () => ({ status: 404, text: 'ACL not found' }),
      'PUT /v1/acl/policy/pol-1': () => ({ json: { ...POLICY, Description: 'd' } }),
      'DELETE /v1/acl/policy/pol-1': () => ({ json: true }),
      'GET /v1/acl/policies': () => ({ json: [{ ...POLICY, Rules: undefined }], index: 9 }),
    });
    const created = await client.acl.policyCreate({ Name: 'web-write', Rules: POLICY.Rules });
    expect(created.ID).to.equal('pol-1');
    expect(body(0)).to.deep.equal({ Name: 'web-write', Rules: POLICY.Rules });
    expect((await client.acl.policyRead('pol-1')).value).to.deep.equal(POLICY);
    expect((await client.acl.policyReadByName('web-write')).value!.ID).to.equal('pol-1');
    expect((await client.acl.policyReadByName('nope')).value).to.equal(null);
    const updated = await client.acl.policyUpdate('pol-1', {
      Name: 'web-write',
      Description: 'd',
      Rules: POLICY.Rules,
    });
    expect(updated.Description).to.equal('d');
    expect(body(4)).to.deep.include({ ID: 'pol-1', Description: 'd' });
    expect(await client.acl.policyDelete('pol-1')).to.equal(true);
    const list = await client.acl.policyList();
    expect(list.index).to.equal(9);
    expect(list.value[0]!.Name).to.equal('web-write');
  });

  it('joinTokenCreate PUTs the Trellis join-token endpoint', async () => {
    const join = {
      AccessorID: 'j-1',
      SecretID: 'j-secret',
      ExpirationTime: '2024-05-01T10:15:00Z',
      CAFingerprint: 'ab:cd',
    };
    await setup({ 'PUT /v1/internal/trellis/join-token': () => ({ json: join }) });
    expect(await client.acl.joinTokenCreate({ TTL: '15m', Node: 'vm-7' })).to.deep.equal(join);
    expect(body(0)).to.deep.equal({ TTL: '15m', Node: 'vm-7' });
    await client.acl.joinTokenCreate();
    expect(body(1)).to.deep.equal({});
  });

  it('a 403 on a write is a permission error naming the request', async () => {
    await setup({ 'PUT /v1/acl/policy': () => ({ status: 403, text: 'Permission denied' }) });
    const err = await client.acl
      .policyCreate({ Name: 'x', Rules: '' })
      .catch((e: unknown) => e as HttpStatusError);
    expect(err).to.be.instanceOf(HttpStatusError);
    expect(err).to.include({ status: 403, method: 'PUT', path: '/v1/acl/policy' });
    expect((err as HttpStatusError).code).to.equal('MESH_ERR_PERMISSION_DENIED');
  });
});
