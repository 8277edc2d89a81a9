/**
 * Blocking queries over real HTTP: a relevant write wakes a waiting query at once, an
 * unrelated write does not, and the X-Consul-Index rules clients rely on hold.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';

async function put(url: string, body: unknown): Promise<void> {
  const r = await request(url, {
    method: 'PUT',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  expect(r.statusCode, await r.body.text()).to.equal(200);
}

function register(base: string, name: string, id: string, tags: string[] = []): Promise<void> {
  return put(`${base}/v1/catalog/register`, {
    Node: 'n1',
    Address: '198.18.0.1',
    Service: { Service: name, ID: id, Port: 80, Tags: tags },
  });
}

async function index(url: string): Promise<number> {
  const r = await request(url);
  await r.body.dump();
  return Number(r.headers['x-consul-index']);
}

describe('blocking queries', function () {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('returns soon after a relevant write and not on an unrelated one', async () => {
    await register(t.url, 'web', 'web-1');
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      const idx = await index(`${t.url}/v1/health/service/web`);
      let answeredAt = 0;
      const pending = request(`${t.url}/v1/health/service/web?index=${idx}&wait=30s`).then(
        async (r) => {
          answeredAt = performance.now();
          return {
            index: Number(r.headers['x-consul-index']),
            body: (await r.body.json()) as { Service: { Tags: string[] } }[],
          };
        },
      );
      await new Promise((r) => setTimeout(r, 100));
      await register(t.url, 'other', `other-${round}`); // unrelated write
      await put(`${t.url}/v1/kv/unrelated/${round}`, 'x');
      await new Promise((r) => setTimeout(r, 300));
      expect(answeredAt, 'an unrelated write must not wake the query').to.equal(0);
      const writeAt = performance.now();
      await register(t.url, 'web', 'web-1', [`r${round}`]);
      const res = await pending;
      latencies.push(answeredAt - writeAt);
      expect(res.index).to.be.greaterThan(idx);
      expect(res.body[0]!.Service.Tags).to.deep.equal([`r${round}`]);
    }
    latencies.sort((a, b) => a - b);
    // The wake-up itself is immediate; the median tolerates a noisy shared machine.
    expect(
      latencies[2],
      `latencies ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`,
    ).to.be.lessThan(100);
  });

  it('wakes KV watchers of a key and of its prefixes, and raises the index on delete', async () => {
    await put(`${t.url}/v1/kv/cfg/a`, '1');
    const keyIdx = await index(`${t.url}/v1/kv/cfg/a`);
    const prefixIdx = await index(`${t.url}/v1/kv/cfg/?recurse`);
    const onKey = request(`${t.url}/v1/kv/cfg/a?index=${keyIdx}&wait=20s`);
    const onPrefix = request(`${t.url}/v1/kv/cfg/?recurse&index=${prefixIdx}&wait=20s`);
    await new Promise((r) => setTimeout(r, 50));
    const del = await request(`${t.url}/v1/kv/cfg/a`, { method: 'DELETE' });
    expect(await del.body.json()).to.equal(true);
    const [k, p] = await Promise.all([onKey, onPrefix]);
    expect(k.statusCode).to.equal(404);
    expect(Number(k.headers['x-consul-index'])).to.be.greaterThan(keyIdx);
    expect(Number(p.headers['x-consul-index'])).to.be.greaterThan(prefixIdx);
    await k.body.dump();
    await p.body.dump();
  });

  // Each read that answers an X-Consul-Index, with a write that changes what it reads. A read
  // that ignored ?index would answer before the write, with the index it was given.
  const blockingReads: [string, string, (base: string, i: number) => Promise<void>][] = [
    ['/v1/kv/raw/k?raw', 'KV ?raw', (b, i) => put(`${b}/v1/kv/raw/k`, `v${i}`)],
    ['/v1/kv/raw/?keys', 'KV ?keys', (b, i) => put(`${b}/v1/kv/raw/k${i}`, 'x')],
    [
      '/v1/kv/raw/?keys&separator=/',
      'KV ?keys&separator',
      (b, i) => put(`${b}/v1/kv/raw/d${i}/x`, 'x'),
    ],
    ['/v1/kv/raw/?recurse', 'KV ?recurse', (b, i) => put(`${b}/v1/kv/raw/r${i}`, 'x')],
    ['/v1/kv/raw/k', 'KV key', (b, i) => put(`${b}/v1/kv/raw/k`, `w${i}`)],
    [
      '/v1/acl/tokens',
      'ACL token list',
      (b, i) => put(`${b}/v1/acl/token`, { Description: `t${i}` }),
    ],
    [
      '/v1/acl/policies',
      'ACL policy list',
      (b, i) => put(`${b}/v1/acl/policy`, { Name: `p${i}`, Rules: '' }),
    ],
    [
      '/v1/connect/ca/configuration',
      'CA configuration',
      (b, i) =>
        put(`${b}/v1/connect/ca/configuration`, {
          Provider: 'consul',
          Config: { LeafCertTTL: `${72 + i}h` },
        }),
    ],
    ['/v1/catalog/services', 'catalog services', (b, i) => register(b, 'blk', `blk-${i}`)],
    [
      '/v1/session/list',
      'session list',
      (b) => put(`${b}/v1/session/create`, { TTL: '60s', Node: 'srv1', Checks: [] }),
    ],
  ];
  for (const [path, what, write] of blockingReads) {
    it(`blocks on ?index for ${what}`, async () => {
      await write(t.url, 0);
      const idx = await index(`${t.url}${path}`);
      const sep = path.includes('?') ? '&' : '?';
      let answered = false;
      const pending = request(`${t.url}${path}${sep}index=${idx}&wait=30s`).then(async (r) => {
        answered = true;
        await r.body.dump();
        return { status: r.statusCode, index: Number(r.headers['x-consul-index']) };
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(answered, 'answered before anything changed').to.equal(false);
      await write(t.url, 1);
      const res = await pending;
      expect(res.status).to.equal(200);
      expect(res.index).to.be.greaterThan(idx);
    });
  }

  it('returns at the wait time with the same index when nothing changes', async () => {
    const idx = await index(`${t.url}/v1/catalog/services`);
    const r = await request(`${t.url}/v1/catalog/services?index=${idx}&wait=200ms`);
    expect(Number(r.headers['x-consul-index'])).to.equal(idx);
    expect(r.headers['x-consul-knownleader']).to.equal('true');
    expect(r.headers['x-consul-lastcontact']).to.equal('0');
    // Exactly this type: node-consul's HTTP layer decodes nothing else as JSON.
    expect(r.headers['content-type']).to.equal('application/json');
    await r.body.dump();
  });

  it('never answers with index 0, even for a missing key', async () => {
    const r = await request(`${t.url}/v1/kv/never/written`);
    expect(r.statusCode).to.equal(404);
    expect(Number(r.headers['x-consul-index'])).to.be.at.least(1);
    await r.body.dump();
  });

  it('rejects invalid index and wait parameters with 400 naming them', async () => {
    for (const [q, word] of [
      ['index=abc', 'index'],
      ['index=-1', 'index'],
      ['wait=forever', 'wait'],
      ['stale&consistent', 'stale'],
    ] as const) {
      const r = await request(`${t.url}/v1/catalog/services?${q}`);
      expect(r.statusCode, q).to.equal(400);
      expect(await r.body.text()).to.include(word);
    }
  });
});
