/**
 * The L4 proxy with real sockets and real mutual TLS on loopback: web's outbound listener ->
 * (mTLS) -> api's public listener -> api's app (a TCP echo server). Certificates come from a
 * real CA built with src/pki; plans are written by hand, as the agent will compile them.
 */
import { expect } from 'chai';
import { connect, createServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { systemClock } from '../../../src/core/index.js';
import type { IntentionRule } from '../../../src/policy/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa, TEST_TD, type TestLeaf } from '../../helpers/mesh-ca.js';
import { tcpRoundTrip as roundTrip } from '../../helpers/net.js';

const TD = TEST_TD;
const uri = (svc: string, td = TD): string => spiffeUri(svc, td);
type Leaf = TestLeaf;
const ca = testCa;

const quiet = { info() {}, warn() {} };

function echoServer(): Promise<{ server: Server; port: number; seen: () => number }> {
  let seen = 0;
  const server = createServer((s) => {
    seen++;
    s.on('error', () => {});
    s.pipe(s);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port, seen: () => seen }),
    ),
  );
}

const allow = (source: string, destination: string, action: 'allow' | 'deny'): IntentionRule => ({
  ID: `${source} => ${destination}`,
  SourceName: source,
  DestinationName: destination,
  Action: action,
});

describe('proxy: L4 over mutual TLS (real sockets)', function () {
  this.timeout(30_000);
  const mesh = ca();
  let app: Awaited<ReturnType<typeof echoServer>>;
  let api: ServiceProxy;
  let web: ServiceProxy;
  let apiPlan: ProxyPlan;
  let webPlan: ProxyPlan;

  const planFor = (service: string, leaf: Leaf, extra: Partial<ProxyPlan> = {}): ProxyPlan => ({
    version: 1,
    service,
    identity: uri(service),
    tls: { ...leaf, roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: false,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: app.port },
      protocol: 'tcp',
    },
    upstreams: [],
    ...extra,
  });

  before(async () => {
    app = await echoServer();
    api = new ServiceProxy({ clock: systemClock, log: quiet });
    apiPlan = planFor('api', mesh.leaf('api'), { intentions: [allow('web', 'api', 'allow')] });
    await api.setPlan(apiPlan);
    web = new ServiceProxy({ clock: systemClock, log: quiet });
    webPlan = planFor('web', mesh.leaf('web'), {
      upstreams: [
        {
          destination: 'api',
          bindAddress: '127.0.0.1',
          bindPort: 0,
          identity: uri('api'),
          endpoints: [{ address: '127.0.0.1', port: api.inboundPort()!, node: 'n2' }],
          protocol: 'tcp',
          balancer: 'round_robin',
        },
      ],
    });
    await web.setPlan(webPlan);
  });

  after(async () => {
    await web.stop();
    await api.stop();
    app.server.close();
  });

  it('carries bytes both ways, half-close included, when an intention allows', async () => {
    const big = 'x'.repeat(200_000);
    expect(await roundTrip(web.upstreamPort('api')!, big)).to.equal(big);
  });

  it('refuses when intentions deny, and the app never sees the connection', async () => {
    const before = app.seen();
    await api.setPlan({ ...apiPlan, version: 2, intentions: [allow('web', 'api', 'deny')] });
    expect(await roundTrip(web.upstreamPort('api')!, 'hello')).to.equal('');
    expect(app.seen()).to.equal(before);
    await api.setPlan({ ...apiPlan, version: 3 });
    expect(await roundTrip(web.upstreamPort('api')!, 'again')).to.equal('again');
  });

  it('closes a connection that was open before the deny', async () => {
    const s = connect({ host: '127.0.0.1', port: web.upstreamPort('api')! });
    s.on('error', () => {});
    const echoed = new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString())));
    s.write('ping');
    expect(await echoed).to.equal('ping');
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await api.setPlan({ ...apiPlan, version: 4, intentions: [allow('*', 'api', 'deny')] });
    await closed;
    await api.setPlan({ ...apiPlan, version: 5 });
  });

  it('aborts before a byte is sent when the upstream is not the destination', async () => {
    const impostor = new ServiceProxy({ clock: systemClock, log: quiet });
    await impostor.setPlan(
      planFor('db', mesh.leaf('db'), { intentions: [allow('*', 'db', 'allow')] }),
    );
    const before = app.seen();
    await web.setPlan({
      ...webPlan,
      version: 2,
      upstreams: [
        {
          ...webPlan.upstreams[0]!,
          endpoints: [{ address: '127.0.0.1', port: impostor.inboundPort()!, node: 'n3' }],
        },
      ],
    });
    try {
      expect(await roundTrip(web.upstreamPort('api')!, 'secret')).to.equal('');
      expect(app.seen()).to.equal(before);
    } finally {
      await web.setPlan({ ...webPlan, version: 3 });
      await impostor.stop();
    }
  });

  it('refuses a client from a foreign CA with the same SPIFFE id, and plaintext', async () => {
    const foreign = ca(TD).leaf('web'); // same trust domain name, different root
    const before = app.seen();
    const tried = await new Promise<string>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: api.inboundPort()!,
        cert: foreign.certChain,
        key: foreign.key,
        ca: [mesh.rootPem],
        checkServerIdentity: () => undefined,
      });
      let got = '';
      s.on('secureConnect', () => s.write('hi'));
      s.on('data', (d) => (got += d.toString()));
      s.on('error', (e) => resolve(`error: ${e.message}`));
      s.on('close', () => resolve(got));
    });
    expect(tried).to.not.include('hi');
    const plain = await roundTrip(api.inboundPort()!, 'GET / HTTP/1.1\r\n\r\n');
    expect(plain).to.not.include('GET');
    expect(app.seen()).to.equal(before);
  });

  it('fails closed before a plan and once the certificate has expired', async () => {
    const idle = new ServiceProxy({ clock: systemClock, log: quiet });
    expect(idle.inboundPort()).to.equal(undefined);
    await idle.stop();
    await web.setPlan({
      ...webPlan,
      version: 4,
      tls: { ...webPlan.tls, notAfter: Date.now() - 1 },
    });
    try {
      expect(await roundTrip(web.upstreamPort('api')!, 'late')).to.equal('');
    } finally {
      await web.setPlan({ ...webPlan, version: 5 });
    }
  });

  it('tries the next endpoint when one is down', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise<void>((r) => dead.close(() => r()));
    await web.setPlan({
      ...webPlan,
      version: 6,
      upstreams: [
        {
          ...webPlan.upstreams[0]!,
          endpoints: [
            { address: '127.0.0.1', port: deadPort, node: 'gone' },
            { address: '127.0.0.1', port: api.inboundPort()!, node: 'n2' },
          ],
        },
      ],
    });
    try {
      for (let i = 0; i < 4; i++)
        expect(await roundTrip(web.upstreamPort('api')!, `n${i}`)).to.equal(`n${i}`);
    } finally {
      await web.setPlan({ ...webPlan, version: 7 });
    }
  });
});
