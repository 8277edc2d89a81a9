import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routes, startFakeApi, type FakeApi, type FakeRequest } from '../client/fake-api.js';
import { trellis } from './harness.js';

const WEB_API = {
  SourceName: 'web',
  DestinationName: 'api',
  SourceType: 'consul',
  Action: 'allow',
  Precedence: 9,
  CreatedAt: '2024-05-01T10:00:00Z',
  CreateIndex: 3,
  ModifyIndex: 3,
};

const L7 = {
  SourceName: 'web',
  DestinationName: 'api',
  SourceType: 'consul',
  Description: 'reads only',
  Permissions: [
    { Action: 'allow', HTTP: { PathPrefix: '/api', Methods: ['GET'] } },
    { Action: 'deny', HTTP: { PathPrefix: '/', Header: [{ Name: 'x-user', Exact: 'bob' }] } },
  ],
  Precedence: 9,
  CreateIndex: 4,
  ModifyIndex: 4,
};

const PERMISSIONS_HCL = `Description = "reads only"
Permissions = [
  { Action = "allow", HTTP { PathPrefix = "/api", Methods = ["GET"] } },
  {
    action = "deny"
    http {
      path_prefix = "/"
      header = [{ name = "x-user", exact = "bob" }]
    }
  },
]
`;

describe('trellis intention', () => {
  let fake: FakeApi;
  let dir: string;
  /** What GET .../exact answers, by "source>destination". */
  let stored: Map<string, unknown>;
  let check: (req: FakeRequest) => unknown;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-ixn-'));
    stored = new Map([['web>api', WEB_API]]);
    check = () => ({ Allowed: true });
    const key = (r: FakeRequest) => `${r.query.get('source')}>${r.query.get('destination')}`;
    fake = await startFakeApi(
      routes({
        'GET /v1/connect/intentions/exact': (r) =>
          stored.has(key(r))
            ? { json: stored.get(key(r)) }
            : { status: 404, text: 'Intention not found' },
        'PUT /v1/connect/intentions/exact': () => ({ json: true }),
        'DELETE /v1/connect/intentions/exact': () => ({}),
        'GET /v1/connect/intentions': () => ({ json: [WEB_API, { ...L7, DestinationName: 'db' }] }),
        'GET /v1/connect/intentions/match': (r) => ({
          json: {
            [r.query.get('name')!]: [
              WEB_API,
              { ...WEB_API, SourceName: '*', Action: 'deny', Precedence: 8 },
            ],
          },
        }),
        'GET /v1/connect/intentions/check': (r) => ({ json: check(r) }),
      }),
    );
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (argv: string[], stdin?: string) =>
    trellis(argv, { env: { TRELLIS_HTTP_ADDR: fake.address }, stdin });
  const writes = () => fake.requests.filter((r) => r.method !== 'GET');

  it('create --deny writes a new intention', async () => {
    const r = await run(['intention', 'create', 'db', 'api', '--deny']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Created: db => api (deny)\n');
    const put = writes()[0]!;
    expect(Object.fromEntries(put.query)).to.deep.equal({ source: 'db', destination: 'api' });
    expect(JSON.parse(put.body.toString())).to.deep.equal({ SourceType: 'consul', Action: 'deny' });
  });

  it('create fails like Consul when the intention exists, and --replace replaces it', async () => {
    const again = await run(['intention', 'create', 'web', 'api', '--deny']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.equal(
      'Error: An intention web => api (allow) already exists; use --replace to replace it\n',
    );
    expect(writes()).to.have.length(0);
    const replaced = await run(['intention', 'create', 'web', 'api', '--deny', '--replace']);
    expect(replaced.code, replaced.stderr).to.equal(0);
    expect(replaced.stdout).to.equal('Replaced: web => api (deny)\n');
  });

  it('create needs exactly one of --allow, --deny or --file', async () => {
    const none = await run(['intention', 'create', 'web', 'db']);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.contain('Error: Give one of --allow, --deny or --file');
    expect(none.stderr).to.contain('Run "trellis intention create --help" for usage.');
    const both = await run(['intention', 'create', 'web', 'db', '--allow', '--deny']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.contain(
      'Give only one of --allow, --deny or --file (got --allow, --deny)',
    );
    expect(fake.requests).to.have.length(0);
  });

  it('create --file sends L7 permissions read from HCL', async () => {
    const file = join(dir, 'rules.hcl');
    await writeFile(file, PERMISSIONS_HCL);
    const r = await run(['intention', 'create', 'web', 'db', '--file', file, '--format', 'json']);
    expect(r.code, r.stderr).to.equal(0);
    const body = JSON.parse(writes()[0]!.body.toString()) as Record<string, unknown>;
    expect(body).to.deep.equal({
      SourceType: 'consul',
      Description: 'reads only',
      Permissions: L7.Permissions,
    });
    expect(JSON.parse(r.stdout)).to.deep.include({ Replaced: false, Success: true });
  });

  it('create --file - reads JSON from stdin', async () => {
    const json = JSON.stringify({ Permissions: [{ Action: 'allow', HTTP: { PathExact: '/x' } }] });
    const r = await run(['intention', 'create', 'web', 'db', '--file', '-'], json);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Created: web => db (1 permission)\n');
  });

  it('create --file with mistakes prints positions and sends nothing', async () => {
    const file = join(dir, 'bad.hcl');
    await writeFile(
      file,
      'Permissions = [\n  { Action = "alow", HTTP { PathPrefix = "/a", PathExact = "/b" } },\n  { HTTP { Methods = ["GTE"] } },\n]\n',
    );
    const r = await run(['intention', 'create', 'web', 'db', '--file', file]);
    expect(r.code).to.equal(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).to.include(
      `${file}:2:14: Permissions[0].Action: invalid value "alow": must be one of "allow", "deny"; did you mean "allow"?`,
    );
    expect(
      lines.some((l) =>
        l.startsWith(`${file}:2:29: Permissions[0].HTTP.PathPrefix: at most one of`),
      ),
    ).to.equal(true);
    expect(
      lines.some((l) => l.startsWith(`${file}:3:3: Permissions[1].Action: missing required key`)),
    ).to.equal(true);
    expect(
      lines.some((l) => l.includes('Permissions[1].HTTP.Methods[0]: invalid value "GTE"')),
    ).to.equal(true);
    expect(lines[lines.length - 1]).to.match(
      /^Error: Intention web => db not written: 4 problem\(s\) in /,
    );
    expect(fake.requests).to.have.length(0);
  });

  it('create --file needs Permissions or Action, not both', async () => {
    const file = join(dir, 'both.json');
    await writeFile(file, '{"Action": "allow", "Permissions": [{"Action": "deny"}]}');
    const r = await run(['intention', 'create', 'web', 'db', '--file', file]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Permissions: Action and Permissions are mutually exclusive');
  });

  it('get prints the intention, its permissions numbered', async () => {
    stored.set('web>api', L7);
    const r = await run(['intention', 'get', 'web', 'api']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal(
      [
        'Source:       web',
        'Destination:  api',
        'Source Type:  consul',
        'Description:  reads only',
        'Precedence:   9',
        'Permissions:',
        '  1. allow PathPrefix "/api" Methods GET',
        '  2. deny PathPrefix "/" Header x-user Exact "bob"',
        '',
      ].join('\n'),
    );
  });

  it('get of a missing intention exits 1', async () => {
    const r = await run(['intention', 'get', 'db', 'api']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal('Error: No intention exists for db => api\n');
  });

  it('delete removes an existing intention and refuses a missing one', async () => {
    const r = await run(['intention', 'delete', 'web', 'api']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Intention deleted: web => api\n');
    expect(writes()[0]!.method).to.equal('DELETE');
    const missing = await run(['intention', 'delete', 'x', 'y']);
    expect(missing.code).to.equal(1);
    expect(writes()).to.have.length(1);
  });

  it('list prints a table; match prints one line per intention', async () => {
    const list = await run(['intention', 'list']);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^Source\s+Action\s+Destination\s+Precedence\s+Description$/);
    expect(lines[1]).to.match(/^web\s+allow\s+api\s+9$/);
    expect(lines[2]).to.match(/^web\s+2 permissions\s+db\s+9\s+reads only$/);
    const match = await run(['intention', 'match', 'api']);
    expect(match.stdout).to.equal('web => api (allow)\n* => api (deny)\n');
    expect(fake.requests.at(-1)!.query.get('by')).to.equal('destination');
    await run(['intention', 'match', '--source', 'web']);
    expect(fake.requests.at(-1)!.query.get('by')).to.equal('source');
    expect((await run(['intention', 'match', '--source', '--destination', 'web'])).code).to.equal(
      2,
    );
  });

  it('check prints Denied and the deciding permission, exit 1', async () => {
    check = () => ({
      Allowed: false,
      Reason: 'intention web => api, permission 2 (deny)',
      Intention: L7,
      Permission: 2,
      Default: false,
    });
    const r = await run([
      'intention',
      'check',
      'web',
      'api',
      '--path',
      '/admin',
      '--method',
      'post',
      '--header',
      'X-User: bob',
      '--header',
      'x-team:  blue ',
    ]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('Denied\n  decided by intention web => api, permission 2 (deny)\n');
    const q = fake.requests[0]!.query;
    expect(q.get('path')).to.equal('/admin');
    expect(q.get('method')).to.equal('POST');
    expect(q.getAll('header')).to.deep.equal(['x-user:bob', 'x-team:blue']);
  });

  it('check prints Allowed by the default policy, exit 0', async () => {
    check = () => ({
      Allowed: true,
      Reason: 'no intention matched: default policy (allow)',
      Intention: null,
      Permission: null,
      Default: true,
    });
    const r = await run(['intention', 'check', 'web', 'api']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal(
      'Allowed\n  decided by the default policy (allow): no intention matches web => api\n',
    );
  });

  it('check explains an L4 intention, and prints only the verdict for a Consul server', async () => {
    check = () => ({ Allowed: true, Intention: WEB_API, Permission: null, Default: false });
    expect((await run(['intention', 'check', 'web', 'api'])).stdout).to.equal(
      'Allowed\n  decided by intention web => api (allow)\n',
    );
    check = () => ({ Allowed: false });
    const consul = await run(['intention', 'check', 'web', 'api']);
    expect(consul.code).to.equal(1);
    expect(consul.stdout).to.equal('Denied\n');
  });

  it('check --format json prints the whole answer', async () => {
    check = () => ({
      Allowed: true,
      Reason: 'r',
      Intention: null,
      Permission: null,
      Default: true,
    });
    const r = await run(['intention', 'check', 'web', 'api', '--format', 'json']);
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      Allowed: true,
      Reason: 'r',
      Intention: null,
      Permission: null,
      Default: true,
    });
  });

  it('check rejects a bad --header with exit 2 and sends nothing', async () => {
    for (const header of ['no colon', ': empty name', 'bad name: x']) {
      const r = await run(['intention', 'check', 'web', 'api', '--header', header]);
      expect(r.code, header).to.equal(2);
      expect(r.stderr).to.contain(`Error: --header "${header}": expected "Name: value"`);
    }
    expect(fake.requests).to.have.length(0);
  });

  it('check exits 2, not 1, when the check itself fails', async () => {
    check = () => {
      throw new Error('unused');
    };
    await fake.close();
    fake = await startFakeApi(() => ({ status: 500, text: 'boom' }));
    const r = await run(['intention', 'check', 'web', 'api']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal(
      'Error: GET /v1/connect/intentions/check failed with HTTP 500: boom\n',
    );
  });
});
