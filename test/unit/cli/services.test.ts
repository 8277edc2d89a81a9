import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeApi, type FakeApi } from '../client/fake-api.js';
import { trellis } from './harness.js';

const WEB = `service {
  name = "web"
  id   = "web-1"
  port = 8080
  check {
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
  }
}
`;

const DISK =
  '{"service": {"name": "db", "port": 5432}, "checks": [{"name": "disk", "ttl": "30s"}]}\n';

// Line 3 has a string where a port number belongs; line 6 never closes the block.
const BROKEN_TYPE = 'service {\n  name = "api"\n  port = "eighty"\n}\n';
const BROKEN_SYNTAX = 'service {\n  name = "x"\n';

describe('trellis services', () => {
  let fake: FakeApi;
  let dir: string;

  beforeEach(async () => {
    fake = await startFakeApi(() => ({}));
    dir = await mkdtemp(join(tmpdir(), 'trellis-svc-'));
    await writeFile(join(dir, 'web.hcl'), WEB);
    await writeFile(join(dir, 'db.json'), DISK);
    await writeFile(join(dir, 'type.hcl'), BROKEN_TYPE);
    await writeFile(join(dir, 'syntax.hcl'), BROKEN_SYNTAX);
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (...argv: string[]) => trellis(argv, { env: { TRELLIS_HTTP_ADDR: fake.address } });
  const file = (name: string) => join(dir, name);

  it('registers every service and standalone check the files define', async () => {
    const r = await run('services', 'register', file('web.hcl'), file('db.json'));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(
      'Registered service: web-1\nRegistered service: db\nRegistered check: disk\n',
    );
    expect(fake.requests.map((q) => `${q.method} ${q.path}`)).to.deep.equal([
      'PUT /v1/agent/service/register',
      'PUT /v1/agent/service/register',
      'PUT /v1/agent/check/register',
    ]);
    const web = JSON.parse(fake.requests[0]!.body.toString());
    expect(web).to.deep.include({ Name: 'web', ID: 'web-1', Port: 8080 });
    expect(web.Check).to.deep.include({ HTTP: 'http://127.0.0.1:8080/health', Interval: '10s' });
  });

  it('registers nothing from any file when one is broken, printing file:line:column', async () => {
    const r = await run(
      'services',
      'register',
      file('web.hcl'),
      file('type.hcl'),
      file('syntax.hcl'),
    );
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).to.match(new RegExp(`^${escape(file('type.hcl'))}:3:\\d+: service\\.port: `));
    expect(lines[1]).to.match(new RegExp(`^${escape(file('syntax.hcl'))}:\\d+:\\d+: `));
    expect(lines[2]).to.equal(
      'Error: Nothing was registered: 2 problem(s) in the service definitions',
    );
    expect(fake.requests).to.have.length(0);
  });

  it('reports an unreadable file the same way, registering nothing', async () => {
    const r = await run('services', 'register', file('web.hcl'), file('nope.hcl'));
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain(`${file('nope.hcl')}: cannot read the file: ENOENT`);
    expect(fake.requests).to.have.length(0);
  });

  it('refuses the same service id in two files', async () => {
    await writeFile(file('web2.hcl'), WEB);
    const r = await run('services', 'register', file('web.hcl'), file('web2.hcl'));
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain(
      `${file('web2.hcl')}: service "web-1" is also defined in ${file('web.hcl')}`,
    );
    expect(fake.requests).to.have.length(0);
  });

  it('prints what it registered as JSON with --format json', async () => {
    const r = await run('services', 'register', file('db.json'), '--format', 'json');
    expect(JSON.parse(r.stdout)).to.deep.equal({ Services: ['db'], Checks: ['disk'] });
  });

  it('deregisters by id, or the ids a file defines', async () => {
    expect((await run('services', 'deregister', 'a', 'b')).stdout).to.equal(
      'Deregistered service: a\nDeregistered service: b\n',
    );
    const r = await run('services', 'deregister', '-f', file('db.json'));
    expect(r.code).to.equal(0);
    expect(fake.requests.map((q) => q.path)).to.deep.equal([
      '/v1/agent/service/deregister/a',
      '/v1/agent/service/deregister/b',
      '/v1/agent/service/deregister/db',
      '/v1/agent/check/deregister/disk',
    ]);
  });

  it('deregister needs ids or a file', async () => {
    const r = await run('services', 'deregister');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Error: Give the service IDs to deregister, or --file');
  });

  it("exits 1 with the server's message when the agent refuses", async () => {
    await fake.close();
    fake = await startFakeApi(() => ({ status: 404, text: 'Unknown service ID "zz"' }));
    const r = await run('services', 'deregister', 'zz');
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      'Error: PUT /v1/agent/service/deregister/zz failed with HTTP 404: Unknown service ID "zz"\n',
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
