import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routes, startFakeApi, type FakeApi, type FakeRequest } from '../client/fake-api.js';
import { trellis } from './harness.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const pair = (Key: string, value: string) => ({
  Key,
  CreateIndex: 1,
  ModifyIndex: 7,
  LockIndex: 0,
  Flags: 0,
  Value: b64(value),
});

describe('trellis kv', () => {
  let fake: FakeApi;
  const stored = new Map<string, Buffer>();
  afterEach(async () => {
    await fake?.close();
    stored.clear();
  });

  beforeEach(async () => {
    fake = await startFakeApi((req: FakeRequest) => {
      const key = decodeURIComponent(req.path.replace(/^\/v1\/kv\//, ''));
      if (req.method === 'PUT') {
        // The fake's ModifyIndex is always 7.
        if (req.query.has('cas') && req.query.get('cas') !== '7') return { json: false };
        stored.set(key, req.body);
        return { json: true };
      }
      return routes({
        'GET /v1/kv/greeting': () => ({ json: [pair('greeting', 'hello world')], index: 7 }),
        'GET /v1/kv/cfg/': (r) =>
          r.query.has('keys')
            ? { json: r.query.get('separator') === '/' ? ['cfg/a/'] : ['cfg/a/x', 'cfg/b'] }
            : { json: [pair('cfg/a/x', '1'), pair('cfg/b', 'two')], index: 7 },
        'GET /v1/kv/missing': () => ({ status: 404, index: 7 }),
        'DELETE /v1/kv/cfg/': () => ({ json: true }),
        'DELETE /v1/kv/greeting': (r) => ({ json: r.query.get('cas') === '7' }),
      })(req);
    });
  });

  const run = (argv: string[], stdin?: string) =>
    trellis(argv, { env: { TRELLIS_HTTP_ADDR: fake.address }, stdin });

  it('put reads the value from stdin for "-" and for no value', async () => {
    const dash = await run(['kv', 'put', 'a', '-'], 'from stdin\n');
    expect(dash.code).to.equal(0);
    expect(dash.stdout).to.equal('Success! Data written to: a\n');
    expect(stored.get('a')!.toString()).to.equal('from stdin\n');
    const none = await run(['kv', 'put', 'b'], 'piped');
    expect(none.code).to.equal(0);
    expect(stored.get('b')!.toString()).to.equal('piped');
  });

  it('put writes an empty string argument as an empty value, not stdin', async () => {
    const r = await run(['kv', 'put', 'e', ''], 'unused');
    expect(r.code).to.equal(0);
    expect(stored.get('e')!.length).to.equal(0);
  });

  it('put without stdin is a usage error', async () => {
    const r = await trellis(['kv', 'put', 'a', '-'], { env: { TRELLIS_HTTP_ADDR: fake.address } });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Error: Cannot read the value from stdin');
    expect(fake.requests).to.have.length(0);
  });

  it('put reads "@file" and keeps numeric-looking values as text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-kv-'));
    try {
      await writeFile(join(dir, 'v.bin'), Buffer.from([1, 2, 3]));
      expect((await run(['kv', 'put', 'f', `@${join(dir, 'v.bin')}`])).code).to.equal(0);
      expect([...stored.get('f')!]).to.deep.equal([1, 2, 3]);
      const missing = await run(['kv', 'put', 'f', `@${join(dir, 'nope')}`]);
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/^Error: Cannot read ".*nope": ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await run(['kv', 'put', 'n', '007']);
    expect(stored.get('n')!.toString()).to.equal('007');
  });

  it('put --cas that does not match explains and exits 1', async () => {
    const r = await run(['kv', 'put', 'a', 'v', '--cas', '3']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      'Error: Did not write to a: check-and-set failed, its ModifyIndex is no longer 3 (someone else changed it)\n',
    );
    expect(fake.requests[0]!.query.get('cas')).to.equal('3');
    const ok = await run(['kv', 'put', 'a', 'v', '--cas', '7', '--flags', '9']);
    expect(ok.code).to.equal(0);
    expect(fake.requests[1]!.query.get('flags')).to.equal('9');
  });

  it('put --format json reports the result as JSON', async () => {
    const r = await run(['kv', 'put', 'a', 'v', '--format', 'json']);
    expect(JSON.parse(r.stdout)).to.deep.equal({ Key: 'a', Success: true });
  });

  it('get prints the raw value, base64 on request, or the pair as JSON', async () => {
    expect((await run(['kv', 'get', 'greeting'])).stdout).to.equal('hello world\n');
    expect((await run(['kv', 'get', 'greeting', '--base64'])).stdout).to.equal(
      `${b64('hello world')}\n`,
    );
    const json = await run(['kv', 'get', 'greeting', '--format', 'json']);
    expect(JSON.parse(json.stdout)).to.include({ Key: 'greeting', ModifyIndex: 7 });
  });

  it('get of a missing key exits 1', async () => {
    const r = await run(['kv', 'get', 'missing']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal('Error: No key exists at: missing\n');
  });

  it('get --recurse prints key:value lines', async () => {
    const r = await run(['kv', 'get', 'cfg/', '--recurse']);
    expect(r.stdout).to.equal('cfg/a/x:1\ncfg/b:two\n');
  });

  it('list prints key names, one level deep with --separator', async () => {
    expect((await run(['kv', 'list', 'cfg/'])).stdout).to.equal('cfg/a/x\ncfg/b\n');
    expect((await run(['kv', 'list', 'cfg/', '--separator', '/'])).stdout).to.equal('cfg/a/\n');
  });

  it('delete reports success, and a failed --cas with exit 1', async () => {
    const all = await run(['kv', 'delete', 'cfg/', '--recurse']);
    expect(all.stdout).to.equal('Success! Deleted keys with prefix: cfg/\n');
    expect(fake.requests[0]!.query.get('recurse')).to.equal('true');
    const cas = await run(['kv', 'delete', 'greeting', '--cas', '1']);
    expect(cas.code).to.equal(1);
    expect(cas.stderr).to.contain('check-and-set failed');
    expect((await run(['kv', 'delete', 'greeting', '--cas', '7'])).code).to.equal(0);
  });
});
