import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routes, startFakeApi, type FakeApi } from '../client/fake-api.js';
import { trellis } from './harness.js';

const WEB = {
  Kind: 'service-defaults',
  Name: 'web',
  Protocol: 'http',
  CreateIndex: 4,
  ModifyIndex: 4,
};

const INTENTIONS_HCL = `Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name   = "web"
    Action = "allow"
  },
]
`;

const RESOLVER_HCL = `kind = "service-resolver"
name = "api"
default_subset = "v1"
subsets = {
  v1 = { filter = "Service.Meta.version == v1" }
}
`;

describe('trellis config', () => {
  let fake: FakeApi;
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-config-'));
    fake = await startFakeApi(
      routes({
        'PUT /v1/config': (r) => ({ json: !r.query.has('cas') || r.query.get('cas') === '4' }),
        'GET /v1/config/service-defaults/web': () => ({ json: WEB }),
        'GET /v1/config/service-defaults/nope': () => ({
          status: 404,
          text: 'Config entry not found for "service-defaults" / "nope"',
        }),
        'GET /v1/config/service-defaults': () => ({ json: [WEB, { ...WEB, Name: 'api' }] }),
        'DELETE /v1/config/service-defaults/web': (r) => ({
          json: r.query.has('cas') ? r.query.get('cas') === '4' : {},
        }),
      }),
    );
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (argv: string[], stdin?: string) =>
    trellis(argv, { env: { TRELLIS_HTTP_ADDR: fake.address }, stdin });
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const sent = (i = 0) => JSON.parse(fake.requests[i]!.body.toString()) as Record<string, unknown>;

  it('write sends the entry an HCL file describes', async () => {
    const r = await run(['config', 'write', await file('ixn.hcl', INTENTIONS_HCL)]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Config entry written: service-intentions/api\n');
    expect(sent()).to.deep.include({ Kind: 'service-intentions', Name: 'api' });
    expect(sent().Sources).to.deep.equal([{ Name: 'web', Action: 'allow', Type: 'consul' }]);
  });

  it("write sends snake_case keys in Consul's spelling", async () => {
    const r = await run(['config', 'write', await file('resolver.hcl', RESOLVER_HCL)]);
    expect(r.code, r.stderr).to.equal(0);
    expect(sent()).to.deep.equal({
      Kind: 'service-resolver',
      Name: 'api',
      DefaultSubset: 'v1',
      Subsets: { v1: { Filter: 'Service.Meta.version == v1' } },
    });
  });

  it('write turns a block under a list key into a list', async () => {
    const text =
      'Kind = "service-router"\nName = "api"\nRoutes {\n  Match { HTTP { PathPrefix = "/a" } }\n}\n';
    const r = await run(['config', 'write', await file('router.hcl', text)]);
    expect(r.code, r.stderr).to.equal(0);
    expect(sent().Routes).to.deep.equal([{ Match: { HTTP: { PathPrefix: '/a' } } }]);
  });

  it('write reads JSON from stdin for "-"', async () => {
    const r = await run(['config', 'write', '-'], JSON.stringify(WEB));
    expect(r.code, r.stderr).to.equal(0);
    expect(sent()).to.include({ Kind: 'service-defaults', Name: 'web', Protocol: 'http' });
  });

  it('write reports syntax errors and bad fields with positions, sending nothing', async () => {
    const syntax = await file('syntax.hcl', 'Kind = "service-defaults"\nName = web\n');
    const r = await run(['config', 'write', syntax]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(
      new RegExp(`^${syntax}:2:8: unquoted word web: strings must be in double quotes\n`),
    );
    expect(r.stderr).to.contain('Error: Config entry not written: 1 problem(s) in');
    const typo = await file(
      'typo.json',
      '{\n  "Kind": "service-defaults",\n  "Name": "web",\n  "Protocl": "http"\n}\n',
    );
    const t = await run(['config', 'write', typo]);
    expect(t.code).to.equal(2);
    expect(t.stderr).to.match(new RegExp(`^${typo}:4:3: Protocl: .*did you mean "Protocol"\\?\n`));
    const dup = await file(
      'dup.hcl',
      'Kind = "service-defaults"\nName = "b"\nProtocol = "http"\nProtocol = "tcp"\n',
    );
    const d = await run(['config', 'write', dup]);
    expect(d.code).to.equal(2);
    expect(d.stderr).to.contain(`${dup}:4:1: Protocol: duplicate key (first set at 3:1)`);
    expect(fake.requests).to.have.length(0);
  });

  it('write --cas that does not match exits 1; --format json reports the result', async () => {
    const path = await file('web.json', JSON.stringify(WEB));
    const stale = await run(['config', 'write', path, '--cas', '3']);
    expect(stale.code).to.equal(1);
    expect(stale.stderr).to.equal(
      'Error: Config entry not updated: service-defaults/web (check-and-set failed: its ModifyIndex is no longer 3)\n',
    );
    expect(fake.requests[0]!.query.get('cas')).to.equal('3');
    const ok = await run(['config', 'write', path, '--cas', '4', '--format', 'json']);
    expect(JSON.parse(ok.stdout)).to.deep.equal({
      Kind: 'service-defaults',
      Name: 'web',
      Success: true,
    });
    expect((await run(['config', 'write', path, '--cas', '-1'])).code).to.equal(2);
  });

  it('write of a missing file is a usage error', async () => {
    const r = await run(['config', 'write', join(dir, 'nope.hcl')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/^Error: Cannot read ".*nope.hcl": ENOENT/);
  });

  it('read prints the entry as JSON; a missing one exits 1', async () => {
    const r = await run(['config', 'read', '--kind', 'service-defaults', '--name', 'web']);
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal(WEB);
    const missing = await run(['config', 'read', '--kind', 'service-defaults', '--name', 'nope']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal(
      'Error: Config entry not found for "service-defaults" / "nope"\n',
    );
  });

  it('read without --name is a usage error', async () => {
    const r = await run(['config', 'read', '--kind', 'service-defaults']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Missing required argument: name');
    expect(r.stderr).to.contain('Run "trellis config read --help" for usage.');
  });

  it('list prints names, or the entries as JSON', async () => {
    const r = await run(['config', 'list', '--kind', 'service-defaults']);
    expect(r.stdout).to.equal('web\napi\n');
    const json = await run(['config', 'list', '--kind', 'service-defaults', '--format', 'json']);
    expect(JSON.parse(json.stdout)).to.have.length(2);
  });

  it('delete reports success, and a failed --cas with exit 1', async () => {
    const r = await run(['config', 'delete', '--kind', 'service-defaults', '--name', 'web']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Config entry deleted: service-defaults/web\n');
    const cas = await run([
      'config',
      'delete',
      '--kind',
      'service-defaults',
      '--name',
      'web',
      '--cas',
      '2',
    ]);
    expect(cas.code).to.equal(1);
    expect(cas.stderr).to.equal(
      'Error: Config entry not deleted: service-defaults/web (check-and-set failed: its ModifyIndex is no longer 2)\n',
    );
  });

  it('a 403 from the server exits 1 with its message', async () => {
    await fake.close();
    fake = await startFakeApi(() => ({ status: 403, text: 'Permission denied' }));
    const r = await run(['config', 'list', '--kind', 'proxy-defaults']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      'Error: GET /v1/config/proxy-defaults failed with HTTP 403: Permission denied\n',
    );
  });
});
