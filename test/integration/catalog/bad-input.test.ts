/**
 * Hostile and broken requests: each gets a 4xx with a message naming what is wrong, nothing is
 * written (the catalog's index does not move), and the server keeps serving.
 */
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import { Client, request } from 'undici';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';

interface Case {
  name: string;
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  path: string;
  body?: string | Buffer;
  status: number;
  message: string;
}

const reg = (o: unknown): string => JSON.stringify(o);

const CASES: Case[] = [
  {
    name: 'malformed JSON',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: '{"Node": "n1",',
    status: 400,
    message: 'Request decode failed',
  },
  {
    name: 'body is not an object',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: '[1,2]',
    status: 400,
    message: 'JSON object',
  },
  {
    name: 'missing node',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Address: '198.18.0.1' }),
    status: 400,
    message: 'Node: missing',
  },
  {
    name: 'missing address',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1' }),
    status: 400,
    message: 'Address',
  },
  {
    name: 'unknown field with a hint',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Servce: {} }),
    status: 400,
    message: 'Servce: unknown field; did you mean "Service"?',
  },
  {
    name: 'mistyped port',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Service: { Service: 'web', Port: 'http' } }),
    status: 400,
    message: 'Service.Port: must be an integer',
  },
  {
    name: 'port out of range',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Service: { Service: 'web', Port: 70000 } }),
    status: 400,
    message: 'Service.Port',
  },
  {
    name: 'name that is not a SPIFFE segment',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Service: { Service: 'web/admin' } }),
    status: 400,
    message: 'Service.Service: "web/admin" is not a valid name',
  },
  {
    name: 'node name with spaces',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'my node', Address: 'a' }),
    status: 400,
    message: 'Node',
  },
  {
    name: 'check for an unknown service',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Check: { Name: 'c', ServiceID: 'nope' } }),
    status: 400,
    message: 'Unknown service ID "nope"',
  },
  {
    name: 'bad check status',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: 'a', Check: { Name: 'c', Status: 'fine' } }),
    status: 400,
    message: 'Status',
  },
  {
    name: 'oversized body',
    method: 'PUT',
    path: '/v1/catalog/register',
    body: Buffer.alloc(2 * 1024 * 1024, 0x20),
    status: 413,
    message: 'too large',
  },
  {
    name: 'oversized KV value',
    method: 'PUT',
    path: '/v1/kv/big',
    body: Buffer.alloc(600 * 1024, 0x61),
    status: 413,
    message: '524288',
  },
  {
    name: 'KV without a key',
    method: 'PUT',
    path: '/v1/kv/',
    body: 'x',
    status: 400,
    message: 'Missing key name',
  },
  {
    name: 'KV path traversal',
    method: 'PUT',
    path: '/v1/kv/a/%2e%2e/b',
    body: 'x',
    status: 400,
    message: 'traversal',
  },
  {
    name: 'KV acquire and release at once',
    method: 'PUT',
    path: '/v1/kv/x?acquire=a&release=b',
    body: 'x',
    status: 400,
    message: 'acquire',
  },
  {
    name: 'KV bad cas',
    method: 'PUT',
    path: '/v1/kv/x?cas=abc',
    body: 'x',
    status: 400,
    message: 'cas',
  },
  {
    name: 'session on a nonexistent node',
    method: 'PUT',
    path: '/v1/session/create',
    body: reg({ Node: 'ghost' }),
    status: 400,
    message: 'missing node registration "ghost"',
  },
  {
    name: 'session TTL too long',
    method: 'PUT',
    path: '/v1/session/create',
    body: reg({ TTL: '1000h' }),
    status: 400,
    message: 'TTL',
  },
  {
    name: 'txn with an unknown verb',
    method: 'PUT',
    path: '/v1/txn',
    body: reg([{ KV: { Verb: 'explode', Key: 'k' } }]),
    status: 400,
    message: '[0].KV.Verb',
  },
  {
    name: 'txn with too many operations',
    method: 'PUT',
    path: '/v1/txn',
    body: reg(Array.from({ length: 129 }, () => ({ KV: { Verb: 'get', Key: 'k' } }))),
    status: 413,
    message: 'too many operations',
  },
  {
    name: 'bad health state',
    method: 'GET',
    path: '/v1/health/state/sad',
    status: 400,
    message: 'Invalid check state',
  },
  {
    name: 'bad filter',
    method: 'GET',
    path: '/v1/catalog/service/web?filter=ServiceName%20%3D%3D',
    status: 400,
    message: 'filter',
  },
  {
    name: 'bad node-meta',
    method: 'GET',
    path: '/v1/catalog/nodes?node-meta=nocolon',
    status: 400,
    message: 'node-meta',
  },
  {
    name: 'another datacenter',
    method: 'GET',
    path: '/v1/catalog/services?dc=dc9',
    status: 400,
    message: 'No path to datacenter "dc9"',
  },
  {
    name: 'wrong method',
    method: 'GET',
    path: '/v1/catalog/register',
    status: 405,
    message: 'method GET not allowed',
  },
  {
    name: 'unknown path',
    method: 'GET',
    path: '/v1/nothing/here',
    status: 404,
    message: 'Unsupported path',
  },
];

/**
 * Control characters and Consul's metadata limits on /v1/catalog/register: in the service, in
 * the node's meta and address, and in checks (the unit table in test/unit/api covers the rules
 * themselves; these show the catalog path applies them and writes nothing).
 */
const TEXT_VECTORS: [string, Record<string, unknown>, string][] = [
  [
    'CR LF in a service tag',
    { Service: { Service: 'web', Tags: ['a\r\nb'] } },
    'Service.Tags[0]: tag contains a control character (U+000D',
  ],
  [
    'NUL in a service meta key',
    { Service: { Service: 'web', Meta: { 'a\u0000': 'v' } } },
    'Service.Meta: key "a\\u0000": meta key contains a control character (U+0000',
  ],
  [
    'a dot in a service meta key',
    { Service: { Service: 'web', Meta: { 'a.b': 'v' } } },
    'Service.Meta: key "a.b": meta key may contain only letters',
  ],
  [
    'a 513-byte service meta value',
    { Service: { Service: 'web', Meta: { k: 'x'.repeat(513) } } },
    'Service.Meta.k: meta value is 513 bytes long',
  ],
  [
    '65 service meta pairs',
    {
      Service: {
        Service: 'web',
        Meta: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
      },
    },
    'Service.Meta: at most 64 meta pairs are allowed (got 65)',
  ],
  [
    'LF in a service meta value',
    { Service: { Service: 'web', Meta: { k: 'a\nb' } } },
    'Service.Meta.k: meta value contains a control character (U+000A',
  ],
  [
    'CR LF in the service address',
    { Service: { Service: 'web', Address: '198.18.0.1\r\nX: y' } },
    'Service.Address: contains a control character',
  ],
  [
    'LF in a tagged address',
    { Service: { Service: 'web', TaggedAddresses: { lan: { Address: 'a\nb', Port: 1 } } } },
    'Service.TaggedAddresses.lan.Address: contains a control character',
  ],
  [
    'NUL in a node meta key',
    { NodeMeta: { 'rack\u0000': 'r1' } },
    'NodeMeta: key "rack\\u0000": meta key contains a control character (U+0000',
  ],
  [
    'a space in a node meta key',
    { NodeMeta: { 'my rack': 'r1' } },
    'NodeMeta: key "my rack": meta key may contain only letters',
  ],
  [
    'CR in a node meta value',
    { NodeMeta: { rack: 'r1\r' } },
    'NodeMeta.rack: meta value contains a control character (U+000D',
  ],
  [
    'LF in the node address',
    { Address: '198.18.0.9\n' },
    'Address: contains a control character (U+000A',
  ],
  [
    'LF in a node tagged address',
    { TaggedAddresses: { wan: '1.2.3.4\n' } },
    'TaggedAddresses.wan: contains a control character',
  ],
  [
    'LF in a check name',
    { Check: { CheckID: 'c1', Name: 'alive\nforged', Status: 'passing' } },
    'Check.Name: contains a control character (U+000A',
  ],
  [
    'NUL in a check id',
    { Checks: [{ CheckID: 'c\u0000', Name: 'c', Status: 'passing' }] },
    'Checks[0].CheckID: contains a control character (U+0000',
  ],
  [
    'LF in a tag of an agent-shaped check service',
    { Service: { Service: 'web', Check: { TTL: '5s', Name: 'a\nb' } } },
    'Service.Check.Name: contains a control character',
  ],
];
for (const [name, fields, message] of TEXT_VECTORS) {
  CASES.push({
    name,
    method: 'PUT',
    path: '/v1/catalog/register',
    body: reg({ Node: 'n1', Address: '198.18.0.1', ...fields }),
    status: 400,
    message,
  });
}

describe('API bad input', function () {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  for (const c of CASES) {
    it(`${c.name}: ${c.status}, nothing written`, async () => {
      const before = t.server.state.lastIndex;
      // A raw path, so that encoded dots reach the server as sent.
      const client = new Client(t.url);
      const r = await client.request({
        path: c.path,
        method: c.method,
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      const text = await r.body.text();
      await client.close();
      expect(r.statusCode, text).to.equal(c.status);
      expect(r.headers['content-type']).to.match(/^text\/plain/);
      expect(text).to.include(c.message);
      expect(text).to.not.match(/\n\s+at /); // no stack traces
      expect(t.server.state.lastIndex, 'no write was logged').to.equal(before);
    });
  }

  it('routes long names to a clear answer instead of a 414', async () => {
    const long = 'a'.repeat(200);
    const r = await request(`${t.url}/v1/catalog/service/${long}`);
    expect(r.statusCode).to.equal(200);
    expect(await r.body.json()).to.deep.equal([]);
    const w = await request(`${t.url}/v1/catalog/register`, {
      method: 'PUT',
      body: JSON.stringify({ Node: 'n1', Address: 'a', Service: { Service: long } }),
    });
    expect(w.statusCode).to.equal(400);
    expect(await w.body.text()).to.include('at most 128 characters');
  });

  it('keeps serving others while many clients send their requests slowly', async () => {
    const { port } = new URL(t.url);
    const slow: Socket[] = [];
    // Many clients: 200 connections from four loopback addresses, each under the per-client cap,
    // so what is tested is slow bodies, not the connection limit.
    for (let i = 0; i < 200; i++) {
      const s = connect({
        port: Number(port),
        host: '127.0.0.1',
        localAddress: `127.0.0.${10 + (i % 4)}`,
      });
      s.on('error', () => {});
      s.write('PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
      slow.push(s);
    }
    try {
      const r = await request(`${t.url}/v1/status/leader`);
      expect(r.statusCode).to.equal(200);
      await r.body.dump();
    } finally {
      for (const s of slow) s.destroy();
    }
    expect(t.server.state.kv.get('slow')).to.equal(undefined);
  });

  it('keeps serving after all of that', async () => {
    const r = await request(`${t.url}/v1/catalog/services`);
    expect(r.statusCode).to.equal(200);
    expect(await r.body.json()).to.have.property('consul');
  });
});
