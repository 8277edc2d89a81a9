import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routes, startFakeApi, type FakeApi } from '../client/fake-api.js';
import { trellis } from './harness.js';

const BOOTSTRAP = {
  AccessorID: '4d123dff-f460-73c3-02c4-8dd64d136e01',
  SecretID: '86cddfb9-2760-d947-358d-a2811156bf31',
  Description: 'Bootstrap Token (Global Management)',
  Policies: [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }],
  Local: false,
  CreateTime: '2024-05-01T10:00:00Z',
  CreateIndex: 5,
  ModifyIndex: 5,
};

const POLICY = {
  ID: '35b8ecb0-707c-ee18-2002-81b238b54b38',
  Name: 'web-write',
  Description: 'Write web',
  Rules: 'service "web" { policy = "write" }',
  Datacenters: null,
  CreateIndex: 7,
  ModifyIndex: 7,
};

const JOIN = {
  AccessorID: 'j-acc',
  SecretID: 'j-secret',
  ExpirationTime: '2024-05-01T10:15:00Z',
  CAFingerprint: 'ab:cd:ef',
  JoinAddress: '10.0.0.5:8501',
};
/** The answer of a server that serves no HTTPS: it names no address to join through. */
const JOIN_NO_HTTPS = { ...JOIN, JoinAddress: undefined };

describe('trellis acl', () => {
  let fake: FakeApi;
  let dir: string;
  let joinAnswer: object;

  beforeEach(async () => {
    joinAnswer = JOIN;
    dir = await mkdtemp(join(tmpdir(), 'trellis-acl-'));
    fake = await startFakeApi(
      routes({
        'PUT /v1/acl/bootstrap': () => ({ json: BOOTSTRAP }),
        'PUT /v1/acl/token': (req) => {
          const body = JSON.parse(req.body.toString()) as Record<string, unknown>;
          return {
            json: {
              ...body,
              AccessorID: 'acc-new',
              SecretID: 'sec-new',
              Local: false,
              CreateTime: '2024-05-01T11:00:00Z',
              ExpirationTime: body.ExpirationTTL ? '2024-05-02T11:00:00Z' : undefined,
              Policies: ((body.Policies ?? []) as { ID?: string; Name?: string }[]).map((p) => ({
                ID: p.ID ?? 'pid-' + p.Name,
                Name: p.Name ?? 'name-' + p.ID,
              })),
              CreateIndex: 9,
              ModifyIndex: 9,
            },
          };
        },
        'PUT /v1/internal/trellis/join-token': () => ({ json: joinAnswer }),
        'GET /v1/acl/tokens': () => ({ json: [{ ...BOOTSTRAP, SecretID: undefined }] }),
        'GET /v1/acl/token/self': (req) =>
          req.headers['x-consul-token'] === BOOTSTRAP.SecretID
            ? { json: BOOTSTRAP }
            : { status: 403, text: 'ACL not found' },
        [`GET /v1/acl/token/${BOOTSTRAP.AccessorID}`]: () => ({ json: BOOTSTRAP }),
        'GET /v1/acl/token/missing': () => ({ status: 404, text: 'ACL not found' }),
        'DELETE /v1/acl/token/acc-new': () => ({ json: true }),
        'PUT /v1/acl/policy': (req) => ({
          json: { ...POLICY, ...(JSON.parse(req.body.toString()) as object) },
        }),
        'GET /v1/acl/policies': () => ({ json: [{ ...POLICY, Rules: undefined }] }),
        [`GET /v1/acl/policy/${POLICY.ID}`]: () => ({ json: POLICY }),
        'GET /v1/acl/policy/name/web-write': () => ({ json: POLICY }),
        'GET /v1/acl/policy/name/nope': () => ({ status: 404, text: 'ACL not found' }),
        [`DELETE /v1/acl/policy/${POLICY.ID}`]: () => ({ json: true }),
      }),
    );
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (argv: string[], env: Record<string, string> = {}, stdin?: string) =>
    trellis(argv, { env: { TRELLIS_HTTP_ADDR: fake.address, ...env }, stdin });
  const sent = (i: number) => JSON.parse(fake.requests[i]!.body.toString()) as unknown;

  it("bootstrap prints the token in Consul's layout", async () => {
    const r = await run(['acl', 'bootstrap']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(
      [
        'AccessorID:       4d123dff-f460-73c3-02c4-8dd64d136e01',
        'SecretID:         86cddfb9-2760-d947-358d-a2811156bf31',
        'Description:      Bootstrap Token (Global Management)',
        'Local:            false',
        'Create Time:      2024-05-01T10:00:00Z',
        'Policies:',
        '   00000000-0000-0000-0000-000000000001 - global-management',
        '',
      ].join('\n'),
    );
  });

  it('bootstrap --format json prints the token as JSON', async () => {
    const r = await run(['acl', 'bootstrap', '--format', 'json']);
    expect(JSON.parse(r.stdout)).to.deep.equal(BOOTSTRAP);
  });

  it('bootstrap after bootstrapping reports the 403 and exits 1', async () => {
    await fake.close();
    fake = await startFakeApi(() => ({ status: 403, text: 'ACL bootstrap no longer allowed' }));
    const r = await run(['acl', 'bootstrap']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      'Error: PUT /v1/acl/bootstrap failed with HTTP 403: ACL bootstrap no longer allowed\n',
    );
  });

  it('token create sends policies, identities and the TTL', async () => {
    const r = await run([
      'acl',
      'token',
      'create',
      '--description',
      'web on vm-1',
      '--policy-name',
      'web-write',
      '--policy-name',
      'ops-read',
      '--policy-id',
      'p-1',
      '--service-identity',
      'web',
      '--service-identity',
      'db:dc1,dc2',
      '--node-identity',
      'vm-1:dc1',
      '--expires-ttl',
      '24h',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(sent(0)).to.deep.equal({
      Description: 'web on vm-1',
      Policies: [{ ID: 'p-1' }, { Name: 'web-write' }, { Name: 'ops-read' }],
      ServiceIdentities: [
        { ServiceName: 'web' },
        { ServiceName: 'db', Datacenters: ['dc1', 'dc2'] },
      ],
      NodeIdentities: [{ NodeName: 'vm-1', Datacenter: 'dc1' }],
      ExpirationTTL: '24h',
    });
    expect(r.stdout).to.contain('AccessorID:       acc-new\nSecretID:         sec-new\n');
    expect(r.stdout).to.contain('Expiration Time:  2024-05-02T11:00:00Z\n');
    expect(r.stdout).to.contain('Policies:\n   p-1 - name-p-1\n   pid-web-write - web-write\n');
    expect(r.stdout).to.contain(
      'Service Identities:\n   web (Datacenters: all)\n   db (Datacenters: dc1, dc2)\n',
    );
    expect(r.stdout).to.contain('Node Identities:\n   vm-1 (Datacenter: dc1)\n');
  });

  it('token create rejects a bad TTL or identity before sending', async () => {
    const ttl = await run(['acl', 'token', 'create', '--expires-ttl', 'tomorrow']);
    expect(ttl.code).to.equal(2);
    expect(ttl.stderr).to.contain('Error: --expires-ttl must be a positive duration');
    expect(ttl.stderr).to.contain('Run "trellis acl token create --help" for usage.');
    const node = await run(['acl', 'token', 'create', '--node-identity', 'vm-1']);
    expect(node.code).to.equal(2);
    expect(node.stderr).to.contain('expected NODE:DATACENTER');
    expect(fake.requests).to.have.length(0);
  });

  it('token create --join prints the secret, fingerprint and a command that works as printed', async () => {
    const r = await run(['acl', 'token', 'create', '--join', '--ttl', '30m', '--node', 'vm-7'], {
      TRELLIS_HTTP_ADDR: `http://${fake.address}`,
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(sent(0)).to.deep.equal({ TTL: '30m', Node: 'vm-7' });
    expect(r.stdout).to.equal(
      [
        'AccessorID:       j-acc',
        'SecretID:         j-secret',
        'Node:             vm-7',
        'Expiration Time:  2024-05-01T10:15:00Z',
        'CA Fingerprint:   ab:cd:ef',
        '',
        'On the new host, as root, run:',
        // The server's HTTPS address, the node the token is bound to, and a data dir.
        '  trellis agent --join-token j-secret --ca-fingerprint ab:cd:ef --retry-join 10.0.0.5:8501 --node vm-7 --data-dir /var/lib/trellis/agent',
        "Add --advertise <the new host's address> so other hosts reach its services.",
        '',
      ].join('\n'),
    );
    expect(r.stderr).to.equal('');
  });

  it('token create --join --format json adds the command', async () => {
    const r = await run(['acl', 'token', 'create', '--join', '--format', 'json']);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect(out).to.deep.include(JOIN);
    expect(out.Command).to.equal(
      'trellis agent --join-token j-secret --ca-fingerprint ab:cd:ef --retry-join 10.0.0.5:8501 --data-dir /var/lib/trellis/agent',
    );
    expect(sent(0)).to.deep.equal({});
  });

  it('token create --join against a server without HTTPS: no command, exit 1 saying why', async () => {
    joinAnswer = JOIN_NO_HTTPS;
    const r = await run(['acl', 'token', 'create', '--join', '--node', 'vm-7']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.contain('SecretID:         j-secret').and.not.contain('trellis agent');
    expect(r.stderr.trim()).to.equal(
      'Error: this server serves no HTTPS API, which joining needs: start it with --https-bind (on by default, port 8501), then make a new join token',
    );
  });

  it('token create --join refuses token flags and a bad --ttl; --ttl needs --join', async () => {
    const both = await run(['acl', 'token', 'create', '--join', '--policy-name', 'x']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.contain('Error: --policy-name cannot be used with --join');
    const ttl = await run(['acl', 'token', 'create', '--join', '--ttl', '15']);
    expect(ttl.code).to.equal(2);
    expect(ttl.stderr).to.contain('Error: --ttl must be a positive duration such as "15m"');
    const alone = await run(['acl', 'token', 'create', '--ttl', '15m']);
    expect(alone.code).to.equal(2);
    expect(alone.stderr).to.contain('Error: --ttl goes with --join');
    expect(fake.requests).to.have.length(0);
  });

  it('token list prints a table', async () => {
    const r = await run(['acl', 'token', 'list']);
    expect(r.code).to.equal(0);
    const [header, row] = r.stdout.split('\n');
    expect(header).to.match(/^AccessorID\s+Description\s+Policies\s+Identities\s+Local\s+Expires$/);
    expect(row).to.contain(BOOTSTRAP.AccessorID);
    expect(row).to.contain('global-management');
  });

  it('token read by accessor, --self, and a missing one', async () => {
    const one = await run(['acl', 'token', 'read', BOOTSTRAP.AccessorID]);
    expect(one.stdout).to.contain(`AccessorID:       ${BOOTSTRAP.AccessorID}`);
    const self = await run(['acl', 'token', 'read', '--self'], {
      TRELLIS_HTTP_TOKEN: BOOTSTRAP.SecretID,
    });
    expect(self.code).to.equal(0);
    expect(self.stdout).to.contain('Description:      Bootstrap Token (Global Management)');
    const bad = await run(['acl', 'token', 'read', '--self', '--token', 'nope']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.equal(
      'Error: GET /v1/acl/token/self failed with HTTP 403: ACL not found\n',
    );
    const missing = await run(['acl', 'token', 'read', 'missing']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal('Error: No token exists with accessor ID missing\n');
  });

  it('token read needs an accessor or --self, not both', async () => {
    expect((await run(['acl', 'token', 'read'])).code).to.equal(2);
    const both = await run(['acl', 'token', 'read', 'x', '--self']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.contain('not both');
  });

  it('token delete reports success', async () => {
    const r = await run(['acl', 'token', 'delete', 'acc-new']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Token "acc-new" deleted successfully\n');
  });

  it('policy create checks the rules and prints the policy', async () => {
    const r = await run([
      'acl',
      'policy',
      'create',
      '--name',
      'web-write',
      '--description',
      'Write web',
      '--rules',
      POLICY.Rules,
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(sent(0)).to.deep.equal({
      Name: 'web-write',
      Description: 'Write web',
      Rules: POLICY.Rules,
    });
    expect(r.stdout).to.equal(
      [
        `ID:           ${POLICY.ID}`,
        'Name:         web-write',
        'Description:  Write web',
        'Datacenters:  ',
        'Rules:',
        POLICY.Rules,
        '',
      ].join('\n'),
    );
  });

  it('policy create with a bad rules file prints positions and sends nothing', async () => {
    const file = join(dir, 'bad.hcl');
    await writeFile(
      file,
      'service "web" {\n  policy = "writ"\n}\nnode_prefx "" { policy = "read" }\n',
    );
    const r = await run(['acl', 'policy', 'create', '--name', 'x', '--rules-file', file]);
    expect(r.code).to.equal(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).to.match(new RegExp(`^${file}:2:12: service\\["web"\\]\\.policy: must be`));
    expect(lines[1]).to.match(
      new RegExp(`^${file}:4:1: node_prefx: unknown resource; did you mean "node_prefix"\\?`),
    );
    expect(lines[2]).to.equal('Error: Policy "x" not created: 2 problem(s) in the rules');
    expect(fake.requests).to.have.length(0);
  });

  it('policy create reads rules from stdin and @file', async () => {
    const fromStdin = await run(
      ['acl', 'policy', 'create', '--name', 'a', '--rules-file', '-'],
      {},
      'operator = "read"\n',
    );
    expect(fromStdin.code, fromStdin.stderr).to.equal(0);
    expect((sent(0) as { Rules: string }).Rules).to.equal('operator = "read"\n');
    const file = join(dir, 'ok.hcl');
    await writeFile(file, 'key_prefix "app/" { policy = "list" }\n');
    const at = await run(['acl', 'policy', 'create', '--name', 'b', '--rules', `@${file}`]);
    expect(at.code, at.stderr).to.equal(0);
    expect((sent(1) as { Rules: string }).Rules).to.contain('key_prefix');
  });

  it('policy create needs rules, and inline rule errors name <rules>', async () => {
    const none = await run(['acl', 'policy', 'create', '--name', 'x']);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.contain('Give the rules with --rules TEXT or --rules-file FILE');
    const bad = await run([
      'acl',
      'policy',
      'create',
      '--name',
      'x',
      '--rules',
      'operator = "all"',
    ]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^<rules>:1:12: operator: must be read, write or deny\n/);
    expect(fake.requests).to.have.length(0);
  });

  it('policy list, read by name or ID, and a missing name', async () => {
    const list = await run(['acl', 'policy', 'list']);
    expect(list.stdout.split('\n')[1]).to.match(/^35b8ecb0\S*\s+web-write\s+Write web$/);
    const byName = await run(['acl', 'policy', 'read', '--name', 'web-write']);
    expect(byName.stdout).to.contain('Rules:\nservice "web" { policy = "write" }\n');
    const byId = await run(['acl', 'policy', 'read', POLICY.ID, '--format', 'json']);
    expect(JSON.parse(byId.stdout)).to.deep.equal(POLICY);
    const missing = await run(['acl', 'policy', 'read', '--name', 'nope']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal('Error: No policy exists named "nope"\n');
    const both = await run(['acl', 'policy', 'read', 'x', '--name', 'y']);
    expect(both.code).to.equal(2);
  });

  it('policy delete by name looks the ID up first', async () => {
    const r = await run(['acl', 'policy', 'delete', '--name', 'web-write']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`Policy "${POLICY.ID}" deleted successfully\n`);
    expect(fake.requests.map((q) => `${q.method} ${q.path}`)).to.deep.equal([
      'GET /v1/acl/policy/name/web-write',
      `DELETE /v1/acl/policy/${POLICY.ID}`,
    ]);
  });

  it('acl token alone asks for a subcommand with exit 2', async () => {
    const r = await run(['acl', 'token']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Missing subcommand: expected one of create, list, read, delete');
    expect(r.stderr).to.contain('Run "trellis acl token --help" for usage.');
  });

  it('--help shows examples for nested commands', async () => {
    const r = await run(['acl', 'policy', 'create', '--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.contain('Examples:');
    expect(r.stdout).to.contain('--rules-file');
  });
});
