/**
 * ACLs on user events, prepared queries, coordinates and the operator endpoints (a server with
 * default policy deny), as Consul's rules have them.
 */
import { expect } from 'chai';
import type { PreparedQuery, UserEvent } from '../../../src/api/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { caller, type Call } from '../connect/http.js';

type Who =
  'anonymous' | 'deployer' | 'eventRead' | 'queryWeb' | 'queryAll' | 'webRead' | 'operator';

const POLICIES: Record<Exclude<Who, 'anonymous'>, string> = {
  deployer: 'event "deploy" { policy = "write" }',
  eventRead: 'event_prefix "" { policy = "read" }',
  queryWeb:
    'query "web-q" { policy = "write" }\nservice_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
  queryAll: 'query_prefix "" { policy = "write" }',
  webRead: 'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }',
  operator: 'operator = "read"',
};

describe('ACLs on events, prepared queries, coordinates and operator (default deny)', function () {
  let t: TestServer;
  let mgmt = '';
  const tokens = {} as Record<Who, string>;
  const call: Call = caller(() => t.url);
  const as = (who: Who, method: string, path: string, body?: unknown) =>
    call(method, path, { token: tokens[who], body });
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await call(method, path, { token: mgmt, body });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'deny' });
    mgmt = ((await call('PUT', '/v1/acl/bootstrap')).body as { SecretID: string }).SecretID;
    tokens.anonymous = '';
    for (const [name, rules] of Object.entries(POLICIES)) {
      await admin('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      const tok = (await admin('PUT', '/v1/acl/token', {
        Description: name,
        Policies: [{ Name: name }],
      })) as { SecretID: string };
      tokens[name as Who] = tok.SecretID;
    }
    for (const svc of ['web', 'db'])
      await admin('PUT', '/v1/catalog/register', {
        Node: 'n1',
        Address: '10.0.0.1',
        Service: { Service: svc, Port: 80 },
      });
  });
  after(() => t.close());

  it('events: event:write on the name to fire, the list holds only what event:read allows', async () => {
    expect((await as('deployer', 'PUT', '/v1/event/fire/deploy')).status).to.equal(200);
    const denied = await as('deployer', 'PUT', '/v1/event/fire/other');
    expect(denied.status).to.equal(403);
    expect(denied.text).to.include("lacks permission 'event:write'");
    expect((await as('anonymous', 'PUT', '/v1/event/fire/deploy')).status).to.equal(403);
    await admin('PUT', '/v1/event/fire/secret');
    const seen = await as('eventRead', 'GET', '/v1/event/list');
    expect((seen.body as UserEvent[]).map((e) => e.Name)).to.deep.equal(['deploy', 'secret']);
    const none = await as('anonymous', 'GET', '/v1/event/list');
    expect(none.status).to.equal(200);
    expect(none.body).to.deep.equal([]);
    expect(none.headers['x-consul-results-filtered-by-acls']).to.equal('true');
  });

  it('named queries need query:write/read on the name; unnamed ones are open by ID and listed only to management', async () => {
    const def = { Name: 'web-q', Service: { Service: 'web' } };
    expect((await as('webRead', 'POST', '/v1/query', def)).status).to.equal(403);
    const created = await as('queryWeb', 'POST', '/v1/query', def);
    expect(created.status, created.text).to.equal(200);
    const id = (created.body as { ID: string }).ID;
    expect((await as('queryWeb', 'POST', '/v1/query', { ...def, Name: 'other' })).status).to.equal(
      403,
    );
    expect((await as('anonymous', 'GET', `/v1/query/${id}`)).status).to.equal(403);
    expect((await as('queryWeb', 'GET', `/v1/query/${id}`)).status).to.equal(200);
    expect((await as('webRead', 'DELETE', `/v1/query/${id}`)).status).to.equal(403);

    // Unnamed: anyone may create it and, knowing the ID, read and delete it.
    const open = await as('anonymous', 'POST', '/v1/query', { Service: { Service: 'db' } });
    expect(open.status, open.text).to.equal(200);
    const openId = (open.body as { ID: string }).ID;
    expect((await as('anonymous', 'GET', `/v1/query/${openId}`)).status).to.equal(200);
    const listed = (await as('queryAll', 'GET', '/v1/query')).body as PreparedQuery[];
    expect(listed.map((q) => q.ID)).to.deep.equal([id]);
    const all = (await admin('GET', '/v1/query')) as PreparedQuery[];
    expect(all.map((q) => q.ID)).to.have.members([id, openId]);
    expect((await as('anonymous', 'DELETE', `/v1/query/${openId}`)).status).to.equal(200);

    // A catch-all template needs write on every query name.
    const catchAll = {
      Name: '',
      Template: { Type: 'name_prefix_match' },
      Service: { Service: '${name.full}' },
    };
    expect((await as('queryWeb', 'POST', '/v1/query', catchAll)).status).to.equal(403);
    expect((await as('queryAll', 'POST', '/v1/query', catchAll)).status).to.equal(200);
  });

  it('execute reads the catalog with the captured token (shown only as <hidden>), else the caller’s', async () => {
    const r = await as('queryAll', 'POST', '/v1/query', {
      Name: 'db-as-web-reader',
      Token: tokens.queryWeb,
      Service: { Service: 'db' },
    });
    expect(r.status, r.text).to.equal(200);
    const id = (r.body as { ID: string }).ID;
    const shown = (await admin('GET', `/v1/query/${id}`)) as PreparedQuery[];
    expect(shown[0]!.Token).to.equal('<hidden>');
    expect(JSON.stringify(await admin('GET', '/v1/query'))).to.not.include(tokens.queryWeb);
    // The anonymous caller cannot read db, the captured token can.
    const viaCaptured = await as('anonymous', 'GET', `/v1/query/${id}/execute`);
    expect(viaCaptured.status, viaCaptured.text).to.equal(200);
    expect((viaCaptured.body as { Nodes: unknown[] }).Nodes).to.have.length(1);
    // Without a captured token the caller's token filters the result.
    const plain = await as('queryAll', 'POST', '/v1/query', {
      Name: 'db-plain',
      Service: { Service: 'db' },
    });
    const plainId = (plain.body as { ID: string }).ID;
    const filtered = await as('webRead', 'GET', `/v1/query/${plainId}/execute`);
    expect((filtered.body as { Nodes: unknown[] }).Nodes).to.deep.equal([]);
    expect(filtered.headers['x-consul-results-filtered-by-acls']).to.equal('true');
    // Writing it back as read keeps the captured token; an unknown token is refused.
    const back = { ...shown[0]!, Token: '<hidden>' };
    expect((await as('queryAll', 'PUT', `/v1/query/${id}`, back)).status).to.equal(200);
    expect(
      ((await as('anonymous', 'GET', `/v1/query/${id}/execute`)).body as { Nodes: unknown[] })
        .Nodes,
    ).to.have.length(1);
    const bad = await as('queryAll', 'PUT', `/v1/query/${id}`, { ...back, Token: 'nope' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Token');
    // Once the captured token is deleted, executing says so.
    const self = (await call('GET', '/v1/acl/token/self', { token: tokens.queryWeb })).body as {
      AccessorID: string;
    };
    await admin('DELETE', `/v1/acl/token/${self.AccessorID}`);
    const gone = await as('anonymous', 'GET', `/v1/query/${id}/execute`);
    expect(gone.status).to.equal(403);
    expect(gone.text).to.equal('ACL not found');
  });

  it('operator endpoints need operator:read; coordinates node:write to update, node:read to list', async () => {
    for (const path of [
      '/v1/operator/raft/configuration',
      '/v1/operator/autopilot/health',
      '/v1/operator/autopilot/state',
    ]) {
      expect((await as('anonymous', 'GET', path)).status, path).to.equal(403);
      expect((await as('operator', 'GET', path)).status, path).to.equal(200);
    }
    const update = {
      Node: 'n1',
      Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1, Adjustment: 0, Height: 0 },
    };
    expect((await as('webRead', 'PUT', '/v1/coordinate/update', update)).status).to.equal(403);
    expect((await admin('PUT', '/v1/coordinate/update', update)) ?? true).to.equal(true);
    const nodes = await as('anonymous', 'GET', '/v1/coordinate/nodes');
    expect(nodes.body).to.deep.equal([]);
    const visible = (await as('webRead', 'GET', '/v1/coordinate/nodes')).body as {
      Node: string;
    }[];
    expect(visible.map((c) => c.Node)).to.include('n1');
  });
});
