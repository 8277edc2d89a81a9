/**
 * POST /v1/agent/connect/authorize on an in-process agent (its own HTTP API) following an
 * in-process server with default policy deny: ACL service:write on Target, body checks, and
 * answers that follow intention writes.
 */
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { TrellisAgent } from '../../../src/agent/agent.js';
import { agentRoutes } from '../../../src/agent/http/agent-routes.js';
import { newId, systemClock, systemRandom } from '../../../src/core/index.js';
import { CONSUL_FASTIFY_OPTIONS, installConsulHttp } from '../../../src/httpkit/consul-http.js';
import { serviceSpiffeId } from '../../../src/policy/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { eventually, tempDirs } from '../../helpers/trellis-process.js';
import { caller, okCaller } from './http.js';

const quiet = { info() {}, warn() {}, error() {} };
const uri = (svc: string): string => serviceSpiffeId('abc.consul', 'dc1', svc);

describe('agent /v1/agent/connect/authorize', function () {
  this.timeout(30_000);
  const tmp = tempDirs();
  let t: TestServer;
  let agent: TrellisAgent;
  let app: FastifyInstance;
  let agentUrl = '';
  let mgmt = '';
  const tokens: Record<string, string> = {};
  const server = caller(() => t.url);
  const admin = okCaller(server, () => mgmt);
  const local = caller(() => agentUrl);
  const authorize = (body: unknown, token?: string) =>
    local('POST', '/v1/agent/connect/authorize', { body, token });

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'deny' });
    mgmt = ((await server('PUT', '/v1/acl/bootstrap')).body as { SecretID: string }).SecretID;
    for (const [name, rules] of [
      ['api-write', 'service "api" { policy = "write" }'],
      ['web-write', 'service "web" { policy = "write" }'],
    ]) {
      await admin('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      tokens[name!] = (
        (await admin('PUT', '/v1/acl/token', { Policies: [{ Name: name }] })) as {
          SecretID: string;
        }
      ).SecretID;
    }
    agent = new TrellisAgent({
      node: {
        node: 'agent-1',
        nodeId: newId(),
        address: '127.0.0.1',
        datacenter: 'dc1',
        meta: {},
      },
      servers: [t.server.address],
      dataDir: tmp.make('authz-agent'),
      clock: systemClock,
      random: systemRandom,
      log: quiet,
      token: mgmt,
      tokenResolver: async (secret) => t.server.acl.resolve(secret),
    });
    await agent.start();
    app = Fastify(CONSUL_FASTIFY_OPTIONS);
    installConsulHttp(app);
    agentRoutes(app, agent);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address() as { port: number };
    agentUrl = `http://127.0.0.1:${addr.port}`;
  });

  after(async () => {
    await app?.close();
    await agent?.stop();
    await t?.close();
    tmp.removeAll();
  });

  it('needs service:write on Target', async () => {
    const body = { Target: 'api', ClientCertURI: uri('web') };
    const okReply = await authorize(body, tokens['api-write']);
    expect(okReply.status, okReply.text).to.equal(200);
    expect(okReply.body).to.deep.equal({
      Authorized: false,
      Reason: 'Default behavior configured by ACLs',
    });
    const wrong = await authorize(body, tokens['web-write']);
    expect(wrong.status).to.equal(403);
    expect(wrong.text).to.match(/lacks permission 'service:write' on "api"/);
    expect((await authorize(body)).status).to.equal(403);
  });

  it('checks the body', async () => {
    const cases: [unknown, RegExp][] = [
      [undefined, /must be \{Target, ClientCertURI\}/],
      [[], /must be \{Target, ClientCertURI\}/],
      [{ ClientCertURI: uri('web') }, /Target service must be specified/],
      [{ Target: 'api' }, /ClientCertURI must be specified/],
      [{ Target: 'bad name', ClientCertURI: uri('web') }, /is not a valid service name/],
      [{ Target: 'api', ClientCertURI: uri('web'), Namespace: 'ns1' }, /only "default"/],
      [{ Target: 'api', ClientCertURI: uri('web'), Bogus: 1 }, /Bogus: unknown field/],
    ];
    for (const [body, message] of cases) {
      const r = await authorize(body, mgmt);
      expect(r.status, JSON.stringify(body)).to.equal(400);
      expect(r.text).to.match(message);
    }
    // Lower-case keys and a serial are accepted; a non-service URI is not authorized.
    const lower = await authorize(
      {
        target: 'api',
        clientcerturi: 'spiffe://abc.consul/agent/client/dc/dc1/id/n1',
        ClientCertSerial: '01:02',
      },
      mgmt,
    );
    expect(lower.status).to.equal(200);
    expect(lower.body).to.deep.include({ Authorized: false });
    expect((lower.body as { Reason: string }).Reason).to.match(/not a valid service identity/);
  });

  it('follows intention writes without asking the server per call', async () => {
    let changes = 0;
    const off = agent.intentions.onChange(() => changes++);
    await admin('PUT', '/v1/connect/intentions/exact?source=web&destination=api', {
      Action: 'allow',
    });
    const r = await eventually(async () => {
      const a = await authorize({ Target: 'api', ClientCertURI: uri('web') }, mgmt);
      return (a.body as { Authorized: boolean }).Authorized && a;
    });
    expect(r.body).to.deep.equal({
      Authorized: true,
      Reason: 'Matched L4 intention: web => api (allow)',
    });
    expect(changes).to.be.greaterThan(0);
    off();
    // The proxy's entry point gives the same decision.
    expect(agent.intentions.decide({ source: 'web', destination: 'api' })).to.deep.include({
      allowed: true,
    });
  });
});
