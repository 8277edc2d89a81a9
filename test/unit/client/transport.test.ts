import { expect } from 'chai';
import { MeshError } from '../../../src/core/index.js';
import { HttpStatusError, createClient, type TrellisClient } from '../../../src/client/index.js';
import { refusedAddress, routes, startFakeApi, type FakeApi } from './fake-api.js';

describe('client transport', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0)) await fn();
  });

  async function api(handler: Parameters<typeof startFakeApi>[0]): Promise<FakeApi> {
    const fake = await startFakeApi(handler);
    cleanup.push(() => fake.close());
    return fake;
  }

  function client(
    addresses: string[],
    opts: { token?: string; timeoutMs?: number } = {},
  ): TrellisClient {
    const c = createClient({ addresses, ...opts });
    cleanup.push(() => c.close());
    return c;
  }

  const leader = routes({ 'GET /v1/status/leader': () => ({ json: '10.0.0.1:8300' }) });

  it('fails over to the second address when the first refuses connections', async () => {
    const dead = await refusedAddress();
    const live = await api(leader);
    const c = client([dead, live.address]);
    const { value } = await c.status.leader();
    expect(value).to.equal('10.0.0.1:8300');
    expect(live.requests).to.have.length(1);
  });

  it('remembers the address that worked and starts there next time', async () => {
    const first = await api(() => ({ reset: true }));
    const second = await api(leader);
    const c = client([first.address, second.address]);
    await c.status.leader();
    await c.status.leader();
    expect(first.requests).to.have.length(1);
    expect(second.requests).to.have.length(2);
  });

  it('fails over when a connection is reset or times out', async () => {
    const reset = await api(() => ({ reset: true }));
    const hang = await api(() => ({ hang: true }));
    const live = await api(leader);
    const c = client([reset.address, hang.address, live.address], { timeoutMs: 200 });
    expect((await c.status.leader()).value).to.equal('10.0.0.1:8300');
    expect(reset.requests).to.have.length(1);
    expect(hang.requests).to.have.length(1);
  });

  it('names every address tried when all fail', async () => {
    const a = await refusedAddress();
    const b = await refusedAddress();
    const err = await client([a, b])
      .status.leader()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(MeshError);
    const mesh = err as MeshError;
    expect(mesh.code).to.equal('MESH_ERR_UNAVAILABLE');
    expect(mesh.kind).to.equal('peer');
    expect(mesh.message).to.contain(`${a} (ECONNREFUSED)`).and.contain(`${b} (ECONNREFUSED)`);
  });

  it('does not try another address after an HTTP error status', async () => {
    const broken = await api(() => ({ status: 500, text: 'boom' }));
    const live = await api(leader);
    const err = await client([broken.address, live.address])
      .status.leader()
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HttpStatusError);
    expect(live.requests).to.have.length(0);
  });

  for (const [status, kind, code] of [
    [400, 'user', 'MESH_ERR_BAD_REQUEST'],
    [403, 'user', 'MESH_ERR_PERMISSION_DENIED'],
    [404, 'user', 'MESH_ERR_NOT_FOUND'],
    [409, 'user', 'MESH_ERR_CONFLICT'],
    [413, 'user', 'MESH_ERR_TOO_LARGE'],
    [500, 'peer', 'MESH_ERR_SERVER'],
    [503, 'peer', 'MESH_ERR_SERVER'],
  ] as const) {
    it(`maps HTTP ${status} to a '${kind}' MeshError with the server's message`, async () => {
      const fake = await api(() => ({ status, text: `server says ${status}\n` }));
      const err = await client([fake.address])
        .catalog.services()
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HttpStatusError);
      const e = err as HttpStatusError;
      expect(e.kind).to.equal(kind);
      expect(e.status).to.equal(status);
      expect(e.code).to.equal(code);
      expect(e.message).to.equal(`server says ${status}`);
      expect(e.method).to.equal('GET');
      expect(e.path).to.equal('/v1/catalog/services');
    });
  }

  it('sends the token and JSON-encodes object bodies', async () => {
    const fake = await api(() => ({}));
    await client([fake.address], { token: 's3cret' }).agent.registerService({
      Name: 'web',
      Port: 80,
    });
    const req = fake.requests[0]!;
    expect(req.method).to.equal('PUT');
    expect(req.path).to.equal('/v1/agent/service/register');
    expect(req.headers['x-consul-token']).to.equal('s3cret');
    expect(req.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(req.body.toString())).to.deep.equal({ Name: 'web', Port: 80 });
  });

  it('sends no token header without a token', async () => {
    const fake = await api(leader);
    await client([fake.address]).status.leader();
    expect(fake.requests[0]!.headers).not.to.have.property('x-consul-token');
  });

  it('decodes JSON and text bodies in the low-level request', async () => {
    const fake = await api(
      routes({
        'GET /json': () => ({ json: { a: 1 } }),
        'GET /text': () => ({ text: 'hello' }),
      }),
    );
    const c = client([fake.address]);
    const json = await c.request<{ a: number }>({ method: 'GET', path: '/json' });
    expect(json).to.include({ status: 200, json: true });
    expect(json.body).to.deep.equal({ a: 1 });
    const text = await c.request({ method: 'GET', path: '/text' });
    expect(text.json).to.equal(false);
    expect(text.body).to.equal('hello');
  });

  it('rejects with the abort reason and tries no other address when the caller aborts', async () => {
    const hang = await api(() => ({ hang: true }));
    const live = await api(leader);
    const ctl = new AbortController();
    const pending = client([hang.address, live.address]).status.leader({ signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('stop')), 50);
    const err = await pending.catch((e: unknown) => e);
    expect((err as Error).message).to.equal('stop');
    expect(live.requests).to.have.length(0);
  });

  it('accepts URLs with a scheme and a path prefix', async () => {
    const fake = await api(() => ({ json: 'x' }));
    await client([`http://${fake.address}/trellis/`]).status.leader();
    expect(fake.requests[0]!.path).to.equal('/trellis/v1/status/leader');
  });

  it('refuses an empty address list and unparsable addresses', () => {
    expect(() => createClient({ addresses: [] })).to.throw(MeshError, /No API address/);
    expect(() => createClient({ addresses: ['ftp://x:1'] })).to.throw(MeshError, /scheme/);
  });
});
