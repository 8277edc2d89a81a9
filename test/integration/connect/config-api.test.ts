/**
 * /v1/config over real HTTP against an in-process server: every endpoint, blocking reads that
 * wake for writes to what they read and only for those, the validation table (400 with a
 * message, nothing written) and cas.
 */
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { blockingGet, caller, okCaller, sleep } from './http.js';

describe('config entry API', function () {
  let t: TestServer;
  const call = caller(() => t.url);
  const ok = okCaller(call);

  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('writes, reads, lists and deletes entries with Consul shapes and indexes', async () => {
    expect(await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'web' })).to.equal(true);
    // Lower-case and snake_case keys are accepted, as Consul's decoder does.
    expect(
      await ok('PUT', '/v1/config', {
        kind: 'service-defaults',
        name: 'api',
        protocol: 'HTTP',
        max_inbound_connections: 10,
      }),
    ).to.equal(true);
    const one = await call('GET', '/v1/config/service-defaults/api');
    expect(one.status).to.equal(200);
    expect(one.headers['content-type']).to.equal('application/json');
    const entry = one.body as Record<string, unknown>;
    expect(entry).to.deep.include({
      Kind: 'service-defaults',
      Name: 'api',
      Protocol: 'http',
      MaxInboundConnections: 10,
    });
    expect(entry.CreateIndex).to.be.a('number');
    expect(entry.ModifyIndex).to.equal(entry.CreateIndex);
    expect(one.index).to.equal(entry.ModifyIndex);

    const list = await call('GET', '/v1/config/service-defaults');
    expect((list.body as { Name: string }[]).map((e) => e.Name)).to.deep.equal(['api', 'web']);
    expect(list.index).to.equal(entry.ModifyIndex);
    const filtered = await call(
      'GET',
      `/v1/config/service-defaults?filter=${encodeURIComponent('Protocol == "http"')}`,
    );
    expect((filtered.body as { Name: string }[]).map((e) => e.Name)).to.deep.equal(['api']);
    expect(await ok('GET', '/v1/config/proxy-defaults')).to.deep.equal([]);

    const missing = await call('GET', '/v1/config/service-defaults/nope');
    expect(missing.status).to.equal(404);
    expect(missing.index).to.be.greaterThan(0);

    expect(await ok('DELETE', '/v1/config/service-defaults/web')).to.deep.equal({});
    expect((await call('GET', '/v1/config/service-defaults/web')).status).to.equal(404);
    // Deleting what is not there is fine.
    expect(await ok('DELETE', '/v1/config/service-defaults/web')).to.deep.equal({});
    // A delete raises the list's index, so list watchers see it.
    const after = await call('GET', '/v1/config/service-defaults');
    expect(after.index).to.be.greaterThan(list.index);
  });

  it('shows Precedence on every source of a service-intentions entry', async () => {
    await ok('PUT', '/v1/config', {
      Kind: 'service-intentions',
      Name: 'db',
      Sources: [
        { Name: 'web', Action: 'allow' },
        { Name: '*', Action: 'deny', Description: 'everyone else' },
      ],
    });
    const e = (await ok('GET', '/v1/config/service-intentions/db')) as {
      Sources: Record<string, unknown>[];
    };
    expect(e.Sources.map((s) => [s.Name, s.Precedence, s.Type])).to.deep.equal([
      ['web', 9, 'consul'],
      ['*', 8, 'consul'],
    ]);
    await ok('DELETE', '/v1/config/service-intentions/db');
  });

  it('answers 400 naming the valid kinds for an unknown kind', async () => {
    for (const [method, path] of [
      ['GET', '/v1/config/service-default'],
      ['GET', '/v1/config/bogus/web'],
      ['DELETE', '/v1/config/bogus/web'],
    ] as const) {
      const r = await call(method, path);
      expect(r.status, `${method} ${path}`).to.equal(400);
      expect(r.text).to.contain('valid kinds: service-defaults, proxy-defaults');
    }
    const near = await call('GET', '/v1/config/service-default');
    expect(near.text).to.contain('did you mean "service-defaults"');
    expect((await call('POST', '/v1/config')).status).to.equal(405);
  });

  it('cas: 0 creates only, N writes only at that ModifyIndex; deletes likewise', async () => {
    const body = { Kind: 'service-defaults', Name: 'cas', Protocol: 'http' };
    expect(await ok('PUT', '/v1/config?cas=0', body)).to.equal(true);
    expect(await ok('PUT', '/v1/config?cas=0', body)).to.equal(false);
    const { ModifyIndex } = (await ok('GET', '/v1/config/service-defaults/cas')) as {
      ModifyIndex: number;
    };
    expect(await ok('PUT', `/v1/config?cas=${ModifyIndex + 100}`, body)).to.equal(false);
    expect(
      await ok('PUT', `/v1/config?cas=${ModifyIndex}`, { ...body, Protocol: 'grpc' }),
    ).to.equal(true);
    const now = (await ok('GET', '/v1/config/service-defaults/cas')) as {
      ModifyIndex: number;
      Protocol: string;
    };
    expect(now.Protocol).to.equal('grpc');
    expect(await ok('DELETE', `/v1/config/service-defaults/cas?cas=${ModifyIndex}`)).to.equal(
      false,
    );
    expect(await ok('DELETE', `/v1/config/service-defaults/cas?cas=${now.ModifyIndex}`)).to.equal(
      true,
    );
    expect((await call('GET', '/v1/config/service-defaults/cas')).status).to.equal(404);
    const bad = await call('PUT', '/v1/config?cas=abc', { body });
    expect(bad.status).to.equal(400);
  });

  it('a blocking read of one entry wakes for that entry only', async () => {
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'watched' });
    const first = await call('GET', '/v1/config/service-defaults/watched');
    const w = blockingGet(call, '/v1/config/service-defaults/watched', first.index);
    await sleep(100);
    // Same kind, other name; other kind, same name; and a KV write.
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'unrelated' });
    await ok('PUT', '/v1/config', {
      Kind: 'service-resolver',
      Name: 'watched',
      ConnectTimeout: '5s',
    });
    await ok('PUT', '/v1/kv/x', 'y');
    await sleep(300);
    expect(w.answered(), 'an unrelated write must not answer the query').to.equal(undefined);
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'watched', Protocol: 'http' });
    const r = await w.pending;
    expect(r.index).to.be.greaterThan(first.index);
    expect(r.body).to.deep.include({ Protocol: 'http' });

    // Deleting it wakes the watcher too, with a 404 and a higher index.
    const d = blockingGet(call, '/v1/config/service-defaults/watched', r.index);
    await sleep(50);
    await ok('DELETE', '/v1/config/service-defaults/watched');
    const gone = await d.pending;
    expect(gone.status).to.equal(404);
    expect(gone.index).to.be.greaterThan(r.index);
  });

  it('a blocking list wakes for any entry of its kind and not for other kinds', async () => {
    const first = await call('GET', '/v1/config/service-resolver');
    const w = blockingGet(call, '/v1/config/service-resolver', first.index);
    await sleep(100);
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'noise' });
    await ok('PUT', '/v1/connect/intentions/exact?source=a&destination=b', { Action: 'allow' });
    await sleep(300);
    expect(w.answered(), 'a write to another kind must not answer the list').to.equal(undefined);
    await ok('PUT', '/v1/config', { Kind: 'service-resolver', Name: 'new', ConnectTimeout: '3s' });
    const r = await w.pending;
    expect((r.body as { Name: string }[]).map((e) => e.Name)).to.include('new');
  });

  describe('validation: 400 with a message, and nothing written', () => {
    const cases: [string, unknown, RegExp][] = [
      ['no body', undefined, /Request body is empty/],
      ['not JSON', '{"Kind":', /Request decode failed/],
      ['not an object', [1, 2], /must be a JSON object/],
      ['no Kind', { Name: 'x' }, /Kind: missing \(required\); valid kinds: service-defaults/],
      ['unknown Kind', { Kind: 'bogus', Name: 'x' }, /unknown config entry kind "bogus"/],
      ['a Consul kind Trellis does not serve', { Kind: 'mesh', Name: 'mesh' }, /not supported/],
      ['no Name', { Kind: 'service-defaults' }, /Name: missing \(required\)/],
      ['bad name', { Kind: 'service-defaults', Name: 'bad name!' }, /is not a valid service name/],
      [
        'misspelt field',
        { Kind: 'service-defaults', Name: 'x', Protocl: 'http' },
        /Protocl: unknown field; did you mean "Protocol"\?/,
      ],
      [
        'bad protocol',
        { Kind: 'service-defaults', Name: 'x', Protocol: 'udp' },
        /Protocol: must be "tcp", "http", "http2" or "grpc"/,
      ],
      [
        'proxy-defaults not named global',
        { Kind: 'proxy-defaults', Name: 'foo' },
        /must be named "global"/,
      ],
      [
        'bad duration',
        { Kind: 'service-resolver', Name: 'x', ConnectTimeout: 'soon' },
        /ConnectTimeout: "soon" is not a duration/,
      ],
      [
        'bad subset filter',
        { Kind: 'service-resolver', Name: 'x', Subsets: { v1: { Filter: 'Service.Meta.v ==' } } },
        /Subsets\["v1"\]\.Filter: bad filter/,
      ],
      [
        'splits not summing to 100',
        {
          Kind: 'service-splitter',
          Name: 'x',
          Splits: [{ Weight: 50 }, { Weight: 20, Service: 'other' }],
        },
        /weights sum to 70, must sum to 100/,
      ],
      [
        'router on a tcp service',
        { Kind: 'service-router', Name: 'x', Routes: [] },
        /protocol "tcp" does not support routing; set Protocol = "http" in service-defaults "x"/,
      ],
      [
        'splitter to a subset no resolver defines',
        {
          Kind: 'service-splitter',
          Name: 'httpsvc',
          Splits: [{ Weight: 100, ServiceSubset: 'v9' }],
        },
        /subset "v9" is not defined/,
      ],
      [
        'intention with Action and Permissions',
        {
          Kind: 'service-intentions',
          Name: 'x',
          Sources: [
            {
              Name: 'web',
              Action: 'allow',
              Permissions: [{ Action: 'deny', HTTP: { PathPrefix: '/' } }],
            },
          ],
        },
        /Action and Permissions are mutually exclusive/,
      ],
      [
        'L7 intention on a tcp destination',
        {
          Kind: 'service-intentions',
          Name: 'x',
          Sources: [{ Name: 'web', Permissions: [{ Action: 'deny', HTTP: { PathPrefix: '/' } }] }],
        },
        /L7 permissions need an HTTP-family protocol/,
      ],
      [
        'a regex with a backreference',
        {
          Kind: 'service-intentions',
          Name: 'httpsvc',
          Sources: [
            { Name: 'web', Permissions: [{ Action: 'deny', HTTP: { PathRegex: '(a)\\1' } }] },
          ],
        },
        /PathRegex: invalid regular expression: backreferences are not supported/,
      ],
      [
        'a wildcard inside a name',
        { Kind: 'service-intentions', Name: 'x', Sources: [{ Name: 'web*', Action: 'allow' }] },
        /Sources\[0\]\.Name: "web\*" is not a valid service name/,
      ],
    ];

    before(async () => {
      await ok('PUT', '/v1/config', {
        Kind: 'service-defaults',
        Name: 'httpsvc',
        Protocol: 'http',
      });
    });

    for (const [what, body, message] of cases) {
      it(what, async () => {
        const before = await call('GET', '/v1/config/service-defaults');
        const kindIndex = async (kind: string) => (await call('GET', `/v1/config/${kind}`)).index;
        const kinds = [
          'service-defaults',
          'proxy-defaults',
          'service-router',
          'service-splitter',
          'service-resolver',
          'service-intentions',
        ];
        const indexes = await Promise.all(kinds.map(kindIndex));
        const r = await call(
          'PUT',
          '/v1/config',
          typeof body === 'string' ? { raw: body } : { body },
        );
        expect(r.status, r.text).to.equal(400);
        expect(r.headers['content-type']).to.match(/^text\/plain/);
        expect(r.text).to.match(message);
        expect(await Promise.all(kinds.map(kindIndex))).to.deep.equal(indexes);
        expect((await call('GET', '/v1/config/service-defaults')).body).to.deep.equal(before.body);
      });
    }

    it('a change that would break a dependent entry is refused and changes nothing', async () => {
      await ok('PUT', '/v1/config', {
        Kind: 'service-router',
        Name: 'httpsvc',
        Routes: [{ Match: { HTTP: { PathPrefix: '/v2' } }, Destination: { Service: 'httpsvc' } }],
      });
      const before = await call('GET', '/v1/config/service-defaults/httpsvc');
      const r = await call('PUT', '/v1/config', {
        body: { Kind: 'service-defaults', Name: 'httpsvc', Protocol: 'tcp' },
      });
      expect(r.status).to.equal(400);
      expect(r.text).to.match(/would invalidate service-router "httpsvc"/);
      const del = await call('DELETE', '/v1/config/service-defaults/httpsvc');
      expect(del.status).to.equal(400);
      expect(del.text).to.match(/cannot delete service-defaults "httpsvc"/);
      const after = await call('GET', '/v1/config/service-defaults/httpsvc');
      expect(after.body).to.deep.equal(before.body);
      expect(after.index).to.equal(before.index);
      // Removing the router first makes both possible.
      await ok('DELETE', '/v1/config/service-router/httpsvc');
      expect(await ok('DELETE', '/v1/config/service-defaults/httpsvc')).to.deep.equal({});
    });
  });
});
