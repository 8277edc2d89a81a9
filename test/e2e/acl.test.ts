/**
 * ACLs end to end, against a real `trellis server --acl-default-policy deny` and a separate
 * `trellis agent`: bootstrap, tokens and policies, and a permission matrix over every endpoint
 * group. Each row asks the same question of four tokens (none, read on web, write on web, write
 * on api: the right and the wrong service) through the direct endpoint, and the KV rows also
 * through /v1/txn, which must decide alike. With default deny, the anonymous token sees nothing.
 */
import { expect } from 'chai';
import { request } from 'undici';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

type Who = 'none' | 'webRead' | 'webWrite' | 'apiWrite';

interface Reply {
  status: number;
  body: unknown;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

describe('ACLs (server with default_policy deny, and an agent)', function () {
  this.timeout(90_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let serverDir = '';
  let agent: TrellisProcess | undefined;
  let base = '';
  let mgmt = '';
  const tokens: Record<Who, string> = { none: '', webRead: '', webWrite: '', apiWrite: '' };

  async function call(
    method: string,
    path: string,
    opts: {
      token?: string;
      body?: unknown;
      raw?: string;
      url?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers['x-consul-token'] = opts.token;
    const r = await request(`${opts.url ?? base}${path}`, {
      method: method as 'GET',
      headers,
      body:
        opts.raw !== undefined
          ? opts.raw
          : opts.body === undefined
            ? undefined
            : JSON.stringify(opts.body),
    });
    const text = await r.body.text();
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: r.statusCode, body, text, headers: r.headers };
  }

  const ok = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await call(method, path, { token: mgmt, body });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };

  async function policy(name: string, rules: string): Promise<void> {
    await ok('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
  }

  async function token(policyName: string): Promise<string> {
    const t = (await ok('PUT', '/v1/acl/token', {
      Description: policyName,
      Policies: [{ Name: policyName }],
    })) as { SecretID: string };
    return t.SecretID;
  }

  async function seed(): Promise<void> {
    for (const [node, svc, addr] of [
      ['n1', 'web', '198.18.0.1'],
      ['n2', 'api', '198.18.0.2'],
    ] as const) {
      await ok('PUT', '/v1/catalog/register', {
        Node: node,
        Address: addr,
        Service: { Service: svc, Port: 80 },
        Check: { CheckID: `${svc}-alive`, Name: 'alive', Status: 'passing', ServiceID: svc },
      });
    }
    await ok('PUT', '/v1/kv/web/a', 'x');
    await ok('PUT', '/v1/kv/api/a', 'y');
  }

  before(async () => {
    serverDir = tmp.make('acl-srv');
    server = await startServerProcess(serverDir, 'srv', ['--acl-default-policy', 'deny']);
    base = `http://${server.address}`;
  });

  after(async () => {
    await agent?.stop();
    await server.stop();
    tmp.removeAll();
  });

  it('bootstraps once, returning a management token whose secret is never shown again', async () => {
    const r = await call('PUT', '/v1/acl/bootstrap');
    expect(r.status).to.equal(200);
    const t = r.body as { SecretID: string; AccessorID: string; Policies: { Name: string }[] };
    expect(t.SecretID).to.match(/^[0-9a-f-]{36}$/);
    expect(t.Policies.map((p) => p.Name)).to.deep.equal(['global-management']);
    mgmt = t.SecretID;
    const again = await call('PUT', '/v1/acl/bootstrap');
    expect(again.status).to.equal(403);
    expect(again.text).to.match(/ACL bootstrap no longer allowed/);
    const read = await call('GET', `/v1/acl/token/${t.AccessorID}`, { token: mgmt });
    expect(read.status).to.equal(200);
    expect(read.body).to.not.have.property('SecretID');
    expect(read.text).to.not.include(mgmt);
    const self = await call('GET', '/v1/acl/token/self', { token: mgmt });
    expect((self.body as { AccessorID: string }).AccessorID).to.equal(t.AccessorID);
    const list = (await ok('GET', '/v1/acl/tokens')) as unknown[];
    expect(JSON.stringify(list)).to.not.include(mgmt);
  });

  it('reads the token from ?token, X-Consul-Token and Authorization: Bearer, in that order', async () => {
    const viaQuery = await call('GET', `/v1/acl/tokens?token=${mgmt}`);
    const viaBearer = await call('GET', '/v1/acl/tokens', {
      headers: { authorization: `Bearer ${mgmt}` },
    });
    const none = await call('GET', '/v1/acl/tokens');
    const wrongFirst = await call('GET', `/v1/acl/tokens?token=${mgmt}`, {
      headers: { 'x-consul-token': '11111111-1111-1111-1111-111111111111' },
    });
    expect([viaQuery.status, viaBearer.status, none.status, wrongFirst.status]).to.deep.equal([
      200, 200, 403, 200,
    ]);
    const unknown = await call('GET', '/v1/catalog/services', {
      token: '11111111-1111-1111-1111-111111111111',
    });
    expect(unknown.status).to.equal(403);
    expect(unknown.text).to.equal('ACL not found');
  });

  it('refuses bad policies and tokens with the field and position, creating nothing', async () => {
    const before = ((await ok('GET', '/v1/acl/policies')) as unknown[]).length;
    const bad = await call('PUT', '/v1/acl/policy', {
      token: mgmt,
      body: { Name: 'bad', Rules: 'service "web" {\n  polcy = "read"\n}' },
    });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Rules: invalid: Rules:2:3: service["web"].polcy: unknown key');
    const badName = await call('PUT', '/v1/acl/policy', {
      token: mgmt,
      body: { Name: 'has space', Rules: '' },
    });
    expect(badName.status).to.equal(400);
    const badToken = await call('PUT', '/v1/acl/token', {
      token: mgmt,
      body: { Policies: [{ Name: 'no-such-policy' }] },
    });
    expect(badToken.status).to.equal(400);
    expect(badToken.text).to.equal('Policies[0]: no policy named "no-such-policy"');
    const typo = await call('PUT', '/v1/acl/token', {
      token: mgmt,
      body: { Polices: [] },
    });
    expect(typo.text).to.equal('Polices: unknown field; did you mean "Policies"?');
    expect(((await ok('GET', '/v1/acl/policies')) as unknown[]).length).to.equal(before);
  });

  describe('permission matrix', () => {
    before(async () => {
      await policy(
        'web-read',
        `service "web" { policy = "read" }
         node_prefix "" { policy = "read" }
         key_prefix "web/" { policy = "read" }
         session_prefix "" { policy = "read" }`,
      );
      await policy(
        'web-write',
        `service "web" { policy = "write" }
         node "n1" { policy = "write" }
         key_prefix "web/" { policy = "write" }
         session "n1" { policy = "write" }`,
      );
      await policy(
        'api-write',
        `service "api" { policy = "write" }
         node "n2" { policy = "write" }
         key_prefix "api/" { policy = "write" }
         session "n2" { policy = "write" }`,
      );
      tokens.webRead = await token('web-read');
      tokens.webWrite = await token('web-write');
      tokens.apiWrite = await token('api-write');
      await seed();
    });

    /**
     * Runs `probe` for each token, in the order the expected row lists them (so a write that
     * succeeds can come last), and compares the outcomes with the row.
     */
    async function row(
      probe: (t: string, who: Who) => Promise<unknown>,
      expected: Record<Who, unknown>,
    ): Promise<void> {
      const got: Record<string, unknown> = {};
      for (const who of Object.keys(expected) as Who[]) got[who] = await probe(tokens[who], who);
      expect(got).to.deep.equal(expected);
    }

    const status = (method: string, path: string, body?: unknown) => async (t: string) =>
      (await call(method, path, { token: t, body })).status;

    it('catalog: register needs node and service write; reads show only what the token may read', async () => {
      const reg = { Node: 'n1', Address: '198.18.0.1', Service: { Service: 'web', Port: 80 } };
      await row(status('PUT', '/v1/catalog/register', reg), {
        none: 403,
        webRead: 403,
        webWrite: 200,
        apiWrite: 403,
      });
      // Changing another node needs write on that node, whatever the service rights.
      const wrongNode = { ...reg, Node: 'n2', Address: '198.18.0.9' };
      await row(status('PUT', '/v1/catalog/register', wrongNode), {
        none: 403,
        webRead: 403,
        webWrite: 403,
        apiWrite: 403,
      });
      await row(
        async (t) =>
          Object.keys((await call('GET', '/v1/catalog/services', { token: t })).body as object),
        { none: [], webRead: ['web'], webWrite: ['web'], apiWrite: ['api'] },
      );
      await row(
        async (t) =>
          ((await call('GET', '/v1/catalog/service/web', { token: t })).body as unknown[]).length,
        { none: 0, webRead: 1, webWrite: 1, apiWrite: 0 },
      );
      await row(
        async (t) =>
          ((await call('GET', '/v1/catalog/nodes', { token: t })).body as { Node: string }[])
            .map((n) => n.Node)
            .sort(),
        { none: [], webRead: ['n1', 'n2', 'srv'], webWrite: ['n1'], apiWrite: ['n2'] },
      );
      await row(async (t) => (await call('GET', '/v1/catalog/node/n1', { token: t })).body, {
        none: null,
        webRead: (await call('GET', '/v1/catalog/node/n1', { token: tokens.webRead })).body,
        webWrite: (await call('GET', '/v1/catalog/node/n1', { token: tokens.webWrite })).body,
        apiWrite: null,
      });
      const filtered = await call('GET', '/v1/catalog/services', { token: tokens.webRead });
      expect(filtered.headers['x-consul-results-filtered-by-acls']).to.equal('true');
      const dereg = { Node: 'n1', ServiceID: 'web' };
      await row(status('PUT', '/v1/catalog/deregister', dereg), {
        none: 403,
        webRead: 403,
        apiWrite: 403,
        webWrite: 200,
      });
      await seed();
    });

    it('health: every read is narrowed by service and node read', async () => {
      await row(
        async (t) =>
          ((await call('GET', '/v1/health/service/web', { token: t })).body as unknown[]).length,
        { none: 0, webRead: 1, webWrite: 1, apiWrite: 0 },
      );
      await row(
        async (t) =>
          ((await call('GET', '/v1/health/state/any', { token: t })).body as { CheckID: string }[])
            .map((c) => c.CheckID)
            .sort(),
        {
          none: [],
          // serfHealth of the server's own node: a node check, readable with node_prefix "".
          webRead: ['serfHealth', 'web-alive'],
          webWrite: ['web-alive'],
          apiWrite: ['api-alive'],
        },
      );
      await row(
        async (t) =>
          ((await call('GET', '/v1/health/checks/api', { token: t })).body as unknown[]).length,
        { none: 0, webRead: 0, webWrite: 0, apiWrite: 1 },
      );
    });

    it('KV: the direct endpoints and /v1/txn decide alike', async () => {
      const txn = (ops: unknown[]) => async (t: string) => {
        const r = await call('PUT', '/v1/txn', { token: t, body: ops });
        return r.status === 409
          ? `409 ${(r.body as { Errors: { What: string }[] }).Errors[0]!.What.split(':')[0]}`
          : r.status;
      };
      await row(status('GET', '/v1/kv/web/a'), {
        none: 403,
        webRead: 200,
        webWrite: 200,
        apiWrite: 403,
      });
      await row(txn([{ KV: { Verb: 'get', Key: 'web/a' } }]), {
        none: '409 Permission denied',
        webRead: 200,
        webWrite: 200,
        apiWrite: '409 Permission denied',
      });
      await row(status('PUT', '/v1/kv/web/b', 'v'), {
        none: 403,
        webRead: 403,
        webWrite: 200,
        apiWrite: 403,
      });
      await row(txn([{ KV: { Verb: 'set', Key: 'web/c', Value: 'eA==' } }]), {
        none: '409 Permission denied',
        webRead: '409 Permission denied',
        webWrite: 200,
        apiWrite: '409 Permission denied',
      });
      await row(
        async (t) => {
          const r = await call('GET', '/v1/kv/?recurse', { token: t });
          return r.status === 200 ? (r.body as { Key: string }[]).map((e) => e.Key) : r.status;
        },
        {
          none: 404,
          webRead: ['web/a', 'web/b', 'web/c'],
          webWrite: ['web/a', 'web/b', 'web/c'],
          apiWrite: ['api/a'],
        },
      );
      await row(
        async (t) => {
          const r = await call('GET', '/v1/kv/?keys', { token: t });
          return r.status === 200 ? r.body : r.status;
        },
        {
          none: 404,
          webRead: ['web/a', 'web/b', 'web/c'],
          webWrite: ['web/a', 'web/b', 'web/c'],
          apiWrite: ['api/a'],
        },
      );
      // A transaction with one refused operation does nothing at all.
      const mixed = await call('PUT', '/v1/txn', {
        token: tokens.webWrite,
        body: [
          { KV: { Verb: 'set', Key: 'web/mixed', Value: 'eA==' } },
          { KV: { Verb: 'set', Key: 'api/mixed', Value: 'eA==' } },
        ],
      });
      expect(mixed.status).to.equal(409);
      expect((mixed.body as { Errors: { OpIndex: number }[] }).Errors[0]!.OpIndex).to.equal(1);
      expect((await call('GET', '/v1/kv/web/mixed', { token: mgmt })).status).to.equal(404);
      await row(status('DELETE', '/v1/kv/web/?recurse'), {
        none: 403,
        webRead: 403,
        apiWrite: 403,
        webWrite: 200,
      });
      await row(txn([{ KV: { Verb: 'delete-tree', Key: 'api/' } }]), {
        none: '409 Permission denied',
        webRead: '409 Permission denied',
        webWrite: '409 Permission denied',
        apiWrite: 200,
      });
      await seed();
    });

    it('sessions: create and destroy need session write on the node; lists are narrowed', async () => {
      await row(
        async (t) => {
          const r = await call('PUT', '/v1/session/create', {
            token: t,
            body: { Node: 'n1', Checks: [] },
          });
          return r.status;
        },
        { none: 403, webRead: 403, webWrite: 200, apiWrite: 403 },
      );
      await row(
        async (t) =>
          ((await call('GET', '/v1/session/list', { token: t })).body as unknown[]).length,
        { none: 0, webRead: 1, webWrite: 1, apiWrite: 0 },
      );
      const [s] = (await ok('GET', '/v1/session/list')) as { ID: string }[];
      await row(status('PUT', `/v1/session/destroy/${s!.ID}`), {
        none: 403,
        webRead: 403,
        apiWrite: 403,
        webWrite: 200,
      });
    });

    it('acl: only acl rights read or change tokens and policies', async () => {
      await row(status('GET', '/v1/acl/tokens'), {
        none: 403,
        webRead: 403,
        webWrite: 403,
        apiWrite: 403,
      });
      await row(status('PUT', '/v1/acl/policy', { Name: 'sneaky', Rules: 'acl = "write"' }), {
        none: 403,
        webRead: 403,
        webWrite: 403,
        apiWrite: 403,
      });
      const denied = await call('GET', '/v1/acl/tokens', { token: tokens.webWrite });
      expect(denied.text).to.match(
        /^Permission denied: token with AccessorID '[0-9a-f-]{36}' lacks permission 'acl:read'$/,
      );
    });

    it("agent: a separate agent decides its local API through the servers' rules", async () => {
      const agentToken = (await ok('PUT', '/v1/acl/token', {
        Description: 'agent a1',
        NodeIdentities: [{ NodeName: 'a1', Datacenter: 'dc1' }],
      })) as { SecretID: string };
      agent = await startTrellis([
        'agent',
        '--server',
        server.address,
        '--node',
        'a1',
        '--data-dir',
        tmp.make('acl-agent'),
        '--bind',
        '127.0.0.1:0',
        '--token',
        agentToken.SecretID,
        '--sync-interval',
        '1000',
      ]);
      const url = `http://${agent.address}`;
      const reg = { Name: 'web', ID: 'web-a1', Port: 8080 };
      await row(
        async (t) =>
          (await call('PUT', '/v1/agent/service/register', { url, token: t, body: reg })).status,
        { none: 403, webRead: 403, apiWrite: 403, webWrite: 200 },
      );
      // The instance reaches the catalog, written with the token it was registered with.
      await eventually(async () => {
        const r = await call('GET', '/v1/catalog/service/web', { token: mgmt });
        expect((r.body as { Node: string }[]).map((x) => x.Node)).to.include('a1');
        return true;
      });
      await row(
        async (t) =>
          Object.keys((await call('GET', '/v1/agent/services', { url, token: t })).body as object),
        { none: [], webRead: ['web-a1'], webWrite: ['web-a1'], apiWrite: [] },
      );
      await row(
        async (t) => (await call('GET', '/v1/agent/service/web-a1', { url, token: t })).status,
        { none: 403, webRead: 200, webWrite: 200, apiWrite: 403 },
      );
      await row(async (t) => (await call('GET', '/v1/agent/self', { url, token: t })).status, {
        none: 403,
        webRead: 403,
        webWrite: 403,
        apiWrite: 403,
      });
      // Reads forwarded to the servers are decided there.
      await row(async (t) => (await call('GET', '/v1/kv/web/a', { url, token: t })).status, {
        none: 403,
        webRead: 200,
        webWrite: 200,
        apiWrite: 403,
      });
      const unknown = await call('GET', '/v1/agent/services', {
        url,
        token: '22222222-2222-2222-2222-222222222222',
      });
      expect([unknown.status, unknown.text]).to.deep.equal([403, 'ACL not found']);
      await row(
        async (t) =>
          (await call('PUT', '/v1/agent/service/deregister/web-a1', { url, token: t })).status,
        { none: 403, webRead: 403, apiWrite: 403, webWrite: 200 },
      );
    });
  });

  describe('afterwards', () => {
    it('a deleted token is refused at once; an expired one after its time', async () => {
      const t = (await ok('PUT', '/v1/acl/token', {
        Policies: [{ Name: 'web-read' }],
        ExpirationTime: new Date(Date.now() + 2500).toISOString(),
      })) as { SecretID: string; AccessorID: string };
      expect((await call('GET', '/v1/kv/web/a', { token: t.SecretID })).status).to.equal(200);
      await eventually(async () => {
        expect((await call('GET', '/v1/kv/web/a', { token: t.SecretID })).text).to.equal(
          'ACL not found',
        );
        return true;
      }, 10_000);
      const u = (await ok('PUT', '/v1/acl/token', { Policies: [{ Name: 'web-read' }] })) as {
        SecretID: string;
        AccessorID: string;
      };
      await ok('DELETE', `/v1/acl/token/${u.AccessorID}`);
      expect((await call('GET', '/v1/kv/web/a', { token: u.SecretID })).status).to.equal(403);
    });

    it('keeps tokens and policies across a restart, and stays bootstrapped', async () => {
      await agent?.stop();
      agent = undefined;
      await server.stop();
      server = await startServerProcess(serverDir, 'srv', ['--acl-default-policy', 'deny']);
      base = `http://${server.address}`;
      expect((await call('GET', '/v1/kv/web/a', { token: tokens.webRead })).status).to.equal(200);
      expect((await call('GET', '/v1/kv/web/a', { token: tokens.apiWrite })).status).to.equal(403);
      expect((await call('PUT', '/v1/acl/bootstrap')).status).to.equal(403);
      const names = ((await ok('GET', '/v1/acl/policies')) as { Name: string }[]).map(
        (p) => p.Name,
      );
      expect(names).to.include.members(['global-management', 'web-read', 'web-write', 'api-write']);
    });
  });
});
