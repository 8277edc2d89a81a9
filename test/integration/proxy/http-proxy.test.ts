/**
 * HTTP services behind the proxy (real sockets, real mutual TLS): every request is decided by
 * L7 intentions at the moment it arrives, the app receives the verified caller in
 * X-Forwarded-Client-Cert (never a client's own), and nothing tunnels around the policy.
 */
import { expect } from 'chai';
import { Agent, request as httpRequest, createServer, type Server } from 'node:http';
import { systemClock } from '../../../src/core/index.js';
import type { IntentionRule } from '../../../src/policy/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa, type TestLeaf } from '../../helpers/mesh-ca.js';

const quiet = { info() {}, warn() {} };

interface Seen {
  method: string;
  url: string;
  xfcc: string | undefined;
  connection: string | undefined;
}

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  agent?: Agent,
): Promise<{ status: number; reason: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: '127.0.0.1', port, path, headers, ...(agent ? { agent } : {}) },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            reason: res.headers['x-trellis-reason'] as string | undefined,
            body,
          }),
        );
      },
    );
    r.on('error', reject);
    r.end();
  });
}

describe('proxy: HTTP with L7 intentions (real sockets)', function () {
  this.timeout(30_000);
  const mesh = testCa();
  const seen: Seen[] = [];
  let app: Server;
  let api: ServiceProxy;
  let web: ServiceProxy;
  let apiPlan: ProxyPlan;
  let port = 0;

  const l7: IntentionRule = {
    ID: 'web => api',
    SourceName: 'web',
    DestinationName: 'api',
    Permissions: [
      { Action: 'deny', HTTP: { PathPrefix: '/public/secret' } },
      { Action: 'allow', HTTP: { PathPrefix: '/public', Methods: ['GET'] } },
    ],
  };

  const plan = (service: string, leaf: TestLeaf, extra: Partial<ProxyPlan>): ProxyPlan => ({
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...leaf, roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: false,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: (app.address() as { port: number }).port },
      protocol: 'http',
    },
    upstreams: [],
    ...extra,
  });

  before(async () => {
    app = createServer((req, res) => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        xfcc: req.headers['x-forwarded-client-cert'] as string | undefined,
        connection: req.headers['x-hop'] as string | undefined,
      });
      res.end('ok');
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    api = new ServiceProxy({ clock: systemClock, log: quiet });
    apiPlan = plan('api', mesh.leaf('api'), { intentions: [l7] });
    await api.setPlan(apiPlan);
    web = new ServiceProxy({ clock: systemClock, log: quiet });
    await web.setPlan(
      plan('web', mesh.leaf('web'), {
        upstreams: [
          {
            destination: 'api',
            bindAddress: '127.0.0.1',
            bindPort: 0,
            identity: spiffeUri('api'),
            endpoints: [{ address: '127.0.0.1', port: api.inboundPort()!, node: 'n' }],
            protocol: 'tcp',
            balancer: 'round_robin',
          },
        ],
      }),
    );
    port = web.upstreamPort('api')!;
  });

  after(async () => {
    await web.stop();
    await api.stop();
    app.close();
  });

  it('decides each request by its path and method, first matching permission wins', async () => {
    const before = seen.length;
    expect((await get(port, '/public/page')).status).to.equal(200);
    const secret = await get(port, '/public/secret/x');
    expect([secret.status, secret.reason, secret.body]).to.deep.equal([
      403,
      'UAEX',
      'RBAC: access denied\n',
    ]);
    expect((await get(port, '/private')).status).to.equal(403);
    expect(seen.length - before).to.equal(1);
  });

  it("gives the app the verified caller in X-Forwarded-Client-Cert, dropping the client's own and hop-by-hop headers", async () => {
    await get(port, '/public/who', {
      'x-forwarded-client-cert': 'By=evil;URI=spiffe://evil/ns/default/dc/dc1/svc/admin',
      connection: 'x-hop',
      'x-hop': 'should not pass',
    });
    const last = seen[seen.length - 1]!;
    expect(last.url).to.equal('/public/who');
    expect(last.xfcc).to.equal(`By=${spiffeUri('api')};URI=${spiffeUri('web')}`);
    expect(last.connection).to.equal(undefined);
  });

  it('applies a changed intention to the next request on a kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await get(port, '/public/a', {}, agent)).status).to.equal(200);
      await api.setPlan({
        ...apiPlan,
        version: 2,
        intentions: [{ ...l7, Permissions: [{ Action: 'deny', HTTP: { PathPrefix: '/' } }] }],
      });
      expect((await get(port, '/public/a', {}, agent)).status).to.equal(403);
    } finally {
      agent.destroy();
      await api.setPlan({ ...apiPlan, version: 3 });
    }
  });

  it('refuses Upgrade so nothing tunnels around the policy', async () => {
    const before = seen.length;
    const r = await get(port, '/public/ws', { connection: 'Upgrade', upgrade: 'websocket' });
    expect(r.status).to.equal(403);
    expect(seen.length).to.equal(before);
  });
});
