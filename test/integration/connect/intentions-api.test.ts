/**
 * /v1/connect/intentions over real HTTP against in-process servers: the views over
 * service-intentions entries, Consul's precedence table case by case through /check, L7
 * permissions on a table of requests, and the default policy when nothing matches.
 */
import { expect } from 'chai';
import type { Intention, IntentionCheckResult } from '../../../src/api/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { blockingGet, caller, okCaller, sleep, type Call } from './http.js';

type Rule = [source: string, destination: string, action: 'allow' | 'deny'];

/** Deletes every intention, so each case starts from nothing. */
async function clearIntentions(call: Call, token?: string): Promise<void> {
  const r = await call('GET', '/v1/connect/intentions', { token });
  for (const i of r.body as Intention[]) {
    const q = `source=${encodeURIComponent(i.SourceName)}&destination=${encodeURIComponent(i.DestinationName)}`;
    const d = await call('DELETE', `/v1/connect/intentions/exact?${q}`, { token });
    expect(d.status, d.text).to.equal(200);
  }
}

async function putRules(call: Call, rules: Rule[], token?: string): Promise<void> {
  for (const [s, d, action] of rules) {
    const r = await call(
      'PUT',
      `/v1/connect/intentions/exact?source=${encodeURIComponent(s)}&destination=${encodeURIComponent(d)}`,
      { body: { Action: action }, token },
    );
    expect(r.status, r.text).to.equal(200);
  }
}

async function check(
  call: Call,
  source: string,
  destination: string,
  extra = '',
  token?: string,
): Promise<IntentionCheckResult> {
  const r = await call(
    'GET',
    `/v1/connect/intentions/check?source=${source}&destination=${destination}${extra}`,
    { token },
  );
  expect(r.status, r.text).to.equal(200);
  return r.body as IntentionCheckResult;
}

const pair = (r: IntentionCheckResult): string | null =>
  r.Intention ? `${r.Intention.SourceName} => ${r.Intention.DestinationName}` : null;

describe('intention API', function () {
  let t: TestServer;
  const call = caller(() => t.url);
  const ok = okCaller(call);

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'allow' });
  });
  after(() => t.close());
  beforeEach(() => clearIntentions(call));

  it('exact: upserts one source of the destination entry, reads it, deletes it', async () => {
    const q = '?source=web&destination=api';
    const missing = await call('GET', `/v1/connect/intentions/exact${q}`);
    expect(missing.status).to.equal(404);
    expect(missing.index).to.be.greaterThan(0);
    expect(
      await ok('PUT', `/v1/connect/intentions/exact${q}`, {
        SourceType: 'consul',
        Action: 'allow',
        Description: 'web may call api',
      }),
    ).to.equal(true);
    const got = (await ok('GET', `/v1/connect/intentions/exact${q}`)) as Intention;
    expect(got).to.deep.include({
      ID: '',
      Description: 'web may call api',
      SourceNS: 'default',
      SourceName: 'web',
      DestinationNS: 'default',
      DestinationName: 'api',
      SourceType: 'consul',
      Action: 'allow',
      Precedence: 9,
    });
    expect(Date.parse(got.CreatedAt!)).to.be.a('number').and.not.NaN;
    expect(got.UpdatedAt).to.equal(got.CreatedAt);
    expect(got.CreateIndex).to.be.greaterThan(0);
    // It is a source of the destination's config entry.
    const entry = (await ok('GET', '/v1/config/service-intentions/api')) as {
      Sources: { Name: string; Action: string }[];
    };
    expect(entry.Sources).to.have.length(1);
    expect(entry.Sources[0]).to.include({ Name: 'web', Action: 'allow' });

    // Replace: same pair, new rule; the creation time stays.
    await ok('PUT', `/v1/connect/intentions/exact${q}`, { Action: 'deny' });
    const replaced = (await ok('GET', `/v1/connect/intentions/exact${q}`)) as Intention;
    expect(replaced).to.include({ Action: 'deny', CreatedAt: got.CreatedAt });
    expect(replaced).to.not.have.property('Description');
    expect(replaced.ModifyIndex).to.be.greaterThan(got.ModifyIndex);

    expect(await ok('DELETE', `/v1/connect/intentions/exact${q}`)).to.equal(true);
    expect((await call('GET', `/v1/connect/intentions/exact${q}`)).status).to.equal(404);
    expect((await call('GET', '/v1/config/service-intentions/api')).status).to.equal(404);
  });

  it('legacy IDs: POST creates, GET/PUT/DELETE by ID, a second POST for the pair is refused', async () => {
    const { ID } = (await ok('POST', '/v1/connect/intentions', {
      SourceName: 'web',
      DestinationName: 'db',
      Action: 'deny',
      Meta: { owner: 'team-a' },
    })) as { ID: string };
    expect(ID).to.match(/^[0-9a-f-]{36}$/);
    const dup = await call('POST', '/v1/connect/intentions', {
      body: { SourceName: 'web', DestinationName: 'db', Action: 'allow' },
    });
    expect(dup.status).to.equal(409);
    expect(dup.text).to.contain('duplicate intention found: web => db');
    const withId = await call('POST', '/v1/connect/intentions', {
      body: { ID: 'x', SourceName: 'a', DestinationName: 'b', Action: 'allow' },
    });
    expect(withId.status).to.equal(400);

    const got = (await ok('GET', `/v1/connect/intentions/${ID}`)) as Intention;
    expect(got).to.deep.include({ ID, SourceName: 'web', DestinationName: 'db', Action: 'deny' });
    expect(got.Meta).to.deep.equal({ owner: 'team-a' });
    // The exact view shows the same intention.
    const exact = (await ok(
      'GET',
      '/v1/connect/intentions/exact?source=web&destination=db',
    )) as Intention;
    expect(exact.ID).to.equal(ID);

    // Update by ID may move it to another pair.
    expect(
      await ok('PUT', `/v1/connect/intentions/${ID}`, {
        SourceName: 'web',
        DestinationName: 'cache',
        Action: 'allow',
      }),
    ).to.deep.equal({ ID });
    const moved = (await ok('GET', `/v1/connect/intentions/${ID}`)) as Intention;
    expect(moved).to.include({
      DestinationName: 'cache',
      Action: 'allow',
      CreatedAt: got.CreatedAt,
    });
    expect((await call('GET', '/v1/config/service-intentions/db')).status).to.equal(404);

    expect(await ok('DELETE', `/v1/connect/intentions/${ID}`)).to.equal(true);
    for (const m of ['GET', 'PUT', 'DELETE']) {
      const r = await call(m, `/v1/connect/intentions/${ID}`, {
        body: { SourceName: 'a', DestinationName: 'b', Action: 'allow' },
      });
      expect(r.status, `${m} after delete`).to.equal(404);
    }
  });

  it('refuses bad names and bodies with 400', async () => {
    const bad: [string, string, unknown, RegExp][] = [
      [
        'PUT',
        '?source=web*&destination=api',
        { Action: 'allow' },
        /source: "web\*" is not a valid/,
      ],
      ['PUT', '?source=web&destination=*api', { Action: 'allow' }, /destination: "\*api"/],
      ['PUT', '?source=&destination=api', { Action: 'allow' }, /source: missing/],
      ['PUT', '?destination=api', { Action: 'allow' }, /source: missing/],
      ['PUT', '?source=team%2Fweb&destination=api', { Action: 'allow' }, /only the "default"/],
      ['PUT', '?source=a%2Fb%2Fc%2Fweb&destination=api', { Action: 'allow' }, /only the "default"/],
      ['PUT', '?source=web&destination=api', {}, /set one of Action or Permissions/],
      [
        'PUT',
        '?source=web&destination=api',
        { Action: 'maybe' },
        /Action: must be "allow" or "deny"/,
      ],
      [
        'PUT',
        '?source=web&destination=api',
        { Action: 'allow', Meta: { a: 'b' } },
        /Meta: cannot be set through this endpoint/,
      ],
      [
        'PUT',
        '?source=web&destination=api',
        { Action: 'allow', SourceType: 'external' },
        /SourceType: must be "consul"/,
      ],
      ['PUT', '?source=web&destination=api', { Acton: 'allow' }, /did you mean "Action"/],
      [
        'PUT',
        '?source=web&destination=api',
        { Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] },
        /L7 permissions need an HTTP-family protocol/,
      ],
      ['GET', '?source=web', undefined, /destination: missing/],
    ];
    for (const [method, q, body, message] of bad) {
      const r = await call(method, `/v1/connect/intentions/exact${q}`, { body });
      expect(r.status, `${method} ${q} ${JSON.stringify(body)}: ${r.text}`).to.equal(400);
      expect(r.text).to.match(message);
    }
    // Namespace and partition "default" are accepted, as is a whole-value wildcard.
    await ok('PUT', '/v1/connect/intentions/exact?source=default%2Fweb&destination=*', {
      Action: 'allow',
    });
    const list = (await ok('GET', '/v1/connect/intentions')) as Intention[];
    expect(list.map((i) => `${i.SourceName}>${i.DestinationName}`)).to.deep.equal(['web>*']);
  });

  it('lists in evaluation order, with ?filter; match returns what applies to each name', async () => {
    await putRules(call, [
      ['*', '*', 'deny'],
      ['web', '*', 'allow'],
      ['*', 'api', 'allow'],
      ['web', 'api', 'deny'],
      ['admin', 'api', 'allow'],
      ['web', 'db', 'allow'],
    ]);
    const list = (await ok('GET', '/v1/connect/intentions')) as Intention[];
    expect(list.map((i) => `${i.SourceName}>${i.DestinationName}:${i.Precedence}`)).to.deep.equal([
      'admin>api:9',
      'web>api:9',
      'web>db:9',
      '*>api:8',
      'web>*:6',
      '*>*:5',
    ]);
    const filtered = (await ok(
      'GET',
      `/v1/connect/intentions?filter=${encodeURIComponent('DestinationName == "api"')}`,
    )) as Intention[];
    expect(filtered.map((i) => i.SourceName)).to.deep.equal(['admin', 'web', '*']);
    const bad = await call('GET', '/v1/connect/intentions?filter=%3D%3D');
    expect(bad.status).to.equal(400);

    const byDst = (await ok(
      'GET',
      '/v1/connect/intentions/match?by=destination&name=api&name=db',
    )) as Record<string, Intention[]>;
    expect(Object.keys(byDst)).to.deep.equal(['api', 'db']);
    expect(byDst.api!.map((i) => `${i.SourceName}>${i.DestinationName}`)).to.deep.equal([
      'admin>api',
      'web>api',
      '*>api',
      'web>*',
      '*>*',
    ]);
    expect(byDst.db!.map((i) => `${i.SourceName}>${i.DestinationName}`)).to.deep.equal([
      'web>db',
      'web>*',
      '*>*',
    ]);
    const bySrc = (await ok('GET', '/v1/connect/intentions/match?by=source&name=admin')) as Record<
      string,
      Intention[]
    >;
    expect(bySrc.admin!.map((i) => `${i.SourceName}>${i.DestinationName}`)).to.deep.equal([
      'admin>api',
      '*>api',
      '*>*',
    ]);
    for (const q of ['by=nobody&name=x', 'by=source', 'name=x']) {
      expect((await call('GET', `/v1/connect/intentions/match?${q}`)).status, q).to.equal(400);
    }
  });

  it('blocking list and match wake for intention writes, not for other config writes', async () => {
    const first = await call('GET', '/v1/connect/intentions');
    const list = blockingGet(call, '/v1/connect/intentions', first.index);
    const m0 = await call('GET', '/v1/connect/intentions/match?by=destination&name=api');
    const match = blockingGet(
      call,
      '/v1/connect/intentions/match?by=destination&name=api',
      m0.index,
    );
    await sleep(100);
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'api' });
    await ok('PUT', '/v1/kv/noise', 'x');
    await sleep(300);
    expect(list.answered()).to.equal(undefined);
    expect(match.answered()).to.equal(undefined);
    await putRules(call, [['web', 'api', 'allow']]);
    const [l, m] = await Promise.all([list.pending, match.pending]);
    expect((l.body as Intention[]).map((i) => i.SourceName)).to.deep.equal(['web']);
    expect((m.body as Record<string, Intention[]>).api).to.have.length(1);
  });

  describe("precedence (Consul's table: exact=>exact 9, *=>exact 8, exact=>* 6, *=>* 5)", () => {
    const cases: {
      what: string;
      rules: Rule[];
      checks: [source: string, destination: string, allowed: boolean, by: string | null][];
    }[] = [
      {
        what: 'exact => exact beats * => exact',
        rules: [
          ['web', 'api', 'allow'],
          ['*', 'api', 'deny'],
        ],
        checks: [
          ['web', 'api', true, 'web => api'],
          ['db', 'api', false, '* => api'],
        ],
      },
      {
        what: 'exact => exact beats * => exact (the other way round)',
        rules: [
          ['web', 'api', 'deny'],
          ['*', 'api', 'allow'],
        ],
        checks: [
          ['web', 'api', false, 'web => api'],
          ['db', 'api', true, '* => api'],
        ],
      },
      {
        what: '* => exact beats exact => *',
        rules: [
          ['*', 'api', 'allow'],
          ['web', '*', 'deny'],
        ],
        checks: [
          ['web', 'api', true, '* => api'],
          ['web', 'db', false, 'web => *'],
        ],
      },
      {
        what: 'exact => * beats * => *',
        rules: [
          ['web', '*', 'allow'],
          ['*', '*', 'deny'],
        ],
        checks: [
          ['web', 'db', true, 'web => *'],
          ['db', 'web', false, '* => *'],
        ],
      },
      {
        what: 'all four levels at once: the highest that matches decides',
        rules: [
          ['*', '*', 'deny'],
          ['web', '*', 'allow'],
          ['*', 'api', 'allow'],
          ['web', 'api', 'deny'],
        ],
        checks: [
          ['web', 'api', false, 'web => api'],
          ['db', 'api', true, '* => api'],
          ['web', 'cache', true, 'web => *'],
          ['db', 'cache', false, '* => *'],
        ],
      },
      {
        what: 'nothing matches: the default policy (allow on this server)',
        rules: [['web', 'api', 'deny']],
        checks: [
          ['api', 'web', true, null],
          ['db', 'cache', true, null],
        ],
      },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        await putRules(call, c.rules);
        for (const [s, d, allowed, by] of c.checks) {
          const r = await check(call, s, d);
          expect(r.Allowed, `${s} => ${d}: ${r.Reason}`).to.equal(allowed);
          expect(pair(r), `${s} => ${d} decided by`).to.equal(by);
          expect(r.Default).to.equal(by === null);
          expect(r.Permission).to.equal(null);
          if (by) expect(r.Reason).to.equal(`intention ${by} (${allowed ? 'allow' : 'deny'})`);
          else expect(r.Reason).to.equal('no intention matched: default policy (allow)');
        }
      });
    }

    it('two intentions never tie: one pair has one intention (PUT replaces, POST is refused)', async () => {
      // With one namespace, each precedence level has at most one intention matching a given
      // request, so equal precedence never has to be broken between an allow and a deny.
      await putRules(call, [
        ['web', 'api', 'allow'],
        ['web', 'api', 'deny'],
      ]);
      const list = (await ok('GET', '/v1/connect/intentions')) as Intention[];
      expect(list).to.have.length(1);
      expect((await check(call, 'web', 'api')).Allowed).to.equal(false);
      const post = await call('POST', '/v1/connect/intentions', {
        body: { SourceName: 'web', DestinationName: 'api', Action: 'allow' },
      });
      expect(post.status).to.equal(409);
      expect((await check(call, 'web', 'api')).Allowed).to.equal(false);
    });
  });

  describe('L7 permissions through /check', () => {
    before(async () => {
      await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'l7', Protocol: 'http' });
    });
    beforeEach(async () => {
      const put = (source: string, permissions: unknown[]) =>
        ok('PUT', `/v1/connect/intentions/exact?source=${source}&destination=l7`, {
          Permissions: permissions,
        });
      await put('paths', [
        { Action: 'deny', HTTP: { PathExact: '/admin' } },
        { Action: 'allow', HTTP: { PathPrefix: '/api/' } },
        { Action: 'allow', HTTP: { PathRegex: '^/v[0-9]+/items$' } },
      ]);
      await put('methods', [
        { Action: 'allow', HTTP: { PathPrefix: '/', Methods: ['GET', 'HEAD'] } },
        { Action: 'deny', HTTP: { PathPrefix: '/' } },
      ]);
      await put('headers', [
        { Action: 'deny', HTTP: { Header: [{ Name: 'x-debug', Present: true }] } },
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-user', Exact: 'alice' }] } },
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-env', Prefix: 'prod-' }] } },
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-tag', Suffix: '-ok' }] } },
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-id', Regex: '^[0-9]+$' }] } },
        // Deny everyone not in team ops (a missing header is "not ops" too).
        { Action: 'deny', HTTP: { Header: [{ Name: 'x-team', Exact: 'ops', Invert: true }] } },
      ]);
    });

    const h = (name: string, value: string): string =>
      `&header=${encodeURIComponent(`${name}:${value}`)}`;
    const p = (path: string): string => `&path=${encodeURIComponent(path)}`;
    /** [source, query extra, allowed, permission (1-based) or null, decided by the default] */
    const table: [string, string, boolean, number | null, boolean][] = [
      ['paths', p('/admin'), false, 1, false],
      ['paths', p('/admin?debug=1'), false, 1, false],
      ['paths', p('/admin/x'), true, null, true],
      ['paths', p('/api/users'), true, 2, false],
      ['paths', p('/api'), true, null, true],
      ['paths', p('/v2/items'), true, 3, false],
      ['paths', p('/v2/items/9'), true, null, true],
      ['methods', `${p('/x')}&method=GET`, true, 1, false],
      ['methods', `${p('/x')}&method=head`, true, 1, false],
      ['methods', `${p('/x')}&method=POST`, false, 2, false],
      ['methods', '&method=DELETE', false, 2, false],
      ['headers', h('x-debug', '1') + h('x-user', 'alice'), false, 1, false],
      ['headers', h('X-User', 'alice'), true, 2, false],
      ['headers', h('x-user', 'bob') + h('x-team', 'ops'), true, null, true],
      ['headers', h('x-user', 'bob'), false, 6, false],
      ['headers', h('x-env', 'prod-eu'), true, 3, false],
      ['headers', h('x-env', 'dev-eu') + h('x-team', 'ops'), true, null, true],
      ['headers', h('x-tag', 'build-ok'), true, 4, false],
      ['headers', h('x-id', '12345'), true, 5, false],
      ['headers', h('x-id', '12a'), false, 6, false],
    ];
    for (const [source, extra, allowed, permission, byDefault] of table) {
      it(`${source}${decodeURIComponent(extra)} -> ${allowed ? 'allow' : 'deny'}${permission ? ` (permission ${permission})` : ' (default)'}`, async () => {
        const r = await check(call, source, 'l7', extra);
        expect(r.Allowed, r.Reason).to.equal(allowed);
        expect(r.Permission).to.equal(permission);
        expect(r.Default).to.equal(byDefault);
        expect(pair(r)).to.equal(`${source} => l7`);
      });
    }

    it('without a path or method it is an L4 decision, which L7 permissions deny', async () => {
      const r = await check(call, 'methods', 'l7');
      expect(r).to.deep.include({ Allowed: false, Permission: null, Default: false });
      expect(r.Reason).to.match(/has L7 permissions, which deny plain connections/);
    });

    it('refuses malformed requests to check', async () => {
      for (const q of [
        '?source=a&destination=l7&path=nope',
        '?source=a&destination=l7&method=GE%20T',
        '?source=a&destination=l7&header=novalue',
        '?source=a&destination=l7&header=%3Avalue',
        '?source=a&destination=l7&path=%2Fa%0Ab',
        '?source=*&destination=l7',
        '?source=a&destination=*',
        '?source=a',
        '?source=a&destination=l7&source-type=external',
      ]) {
        const r = await call('GET', `/v1/connect/intentions/check${q}`);
        expect(r.status, `${q}: ${r.text}`).to.equal(400);
      }
    });
  });
});

describe('intention check with default policy deny', function () {
  let t: TestServer;
  let token = '';
  const call = caller(() => t.url);

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'deny' });
    const boot = await call('PUT', '/v1/acl/bootstrap');
    token = (boot.body as { SecretID: string }).SecretID;
  });
  after(() => t.close());

  it('denies what no intention matches, saying the default decided', async () => {
    await putRules(call, [['web', 'api', 'allow']], token);
    const none = await check(call, 'db', 'api', '', token);
    expect(none).to.deep.equal({
      Allowed: false,
      Reason: 'no intention matched: default policy (deny)',
      Intention: null,
      Permission: null,
      Default: true,
    });
    expect((await check(call, 'web', 'api', '', token)).Allowed).to.equal(true);
  });

  it('an L7 intention whose permissions all miss falls to the default (deny)', async () => {
    await call('PUT', '/v1/config', {
      token,
      body: { Kind: 'service-defaults', Name: 'web2', Protocol: 'http' },
    });
    const r = await call('PUT', '/v1/connect/intentions/exact?source=a&destination=web2', {
      token,
      body: { Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/ok' } }] },
    });
    expect(r.status, r.text).to.equal(200);
    const hit = await check(call, 'a', 'web2', '&path=/ok/1', token);
    expect(hit).to.deep.include({ Allowed: true, Permission: 1, Default: false });
    const miss = await check(call, 'a', 'web2', '&path=/other', token);
    expect(miss).to.deep.include({ Allowed: false, Permission: null, Default: true });
    expect(miss.Reason).to.match(/none of its permissions did: default policy \(deny\)/);
  });
});
