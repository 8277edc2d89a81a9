/**
 * A plan that moves the proxy's listeners, with real sockets and mutual TLS: the new listener
 * is opened before the old one is closed (make before break). When the new port is held by
 * another process the plan is refused with a ListenError naming the port, and the proxy keeps
 * its old plan and listeners: traffic goes on. A move to another address on the same port
 * (which cannot be made before the break) works too.
 */
import { expect } from 'chai';
import { connect, createServer, type Server } from 'node:net';
import { systemClock } from '../../../src/core/index.js';
import { ListenError, ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';
import { accepts, freePort, tcpRoundTrip } from '../../helpers/net.js';

const quiet = { info() {}, warn() {} };

function listenOn(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) =>
    server.listen(port, host, () => resolve((server.address() as { port: number }).port)),
  );
}

describe('proxy: moving listeners (make before break)', function () {
  this.timeout(30_000);
  const mesh = testCa();
  let app: Server;
  let api: ServiceProxy;
  let web: ServiceProxy;
  let holder: Server;

  const plan = (service: string, extra: Partial<ProxyPlan>): ProxyPlan => ({
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: true,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: 1 },
      protocol: 'tcp',
    },
    upstreams: [],
    ...extra,
  });
  const webPlan = (version: number, upstreamPort: number): ProxyPlan =>
    plan('web', {
      version,
      upstreams: [
        {
          destination: 'api',
          bindAddress: '127.0.0.1',
          bindPort: upstreamPort,
          identity: spiffeUri('api'),
          endpoints: [{ address: '127.0.0.1', port: api.inboundPort()!, node: 'n' }],
          protocol: 'tcp',
          balancer: 'round_robin',
        },
      ],
    });

  before(async () => {
    app = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    const appPort = await listenOn(app, 0);
    api = new ServiceProxy({ clock: systemClock, log: quiet });
    await api.setPlan(
      plan('api', {
        inbound: {
          bindAddress: '127.0.0.1',
          bindPort: 0,
          localApp: { address: '127.0.0.1', port: appPort },
          protocol: 'tcp',
        },
      }),
    );
    web = new ServiceProxy({ clock: systemClock, log: quiet });
  });

  after(async () => {
    await web.stop();
    await api.stop();
    app.close();
    holder?.close();
  });

  it('refuses a plan whose new port another process holds, and keeps serving the old one', async () => {
    const first = await freePort();
    await web.setPlan(webPlan(1, first));
    expect(await tcpRoundTrip(first, 'one')).to.equal('one');
    holder = createServer((c) => c.destroy());
    const taken = await listenOn(holder, 0);
    let err: unknown;
    try {
      await web.setPlan(webPlan(2, taken));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ListenError);
    expect((err as Error).message).to.equal(
      `cannot listen on 127.0.0.1:${taken}: port ${taken} is in use by another process (EADDRINUSE)`,
    );
    expect(web.plan!.upstreams[0]!.bindPort).to.equal(first);
    expect(await tcpRoundTrip(first, 'still')).to.equal('still');

    // Freed: the same plan goes in, the new port serves and the old one is closed.
    await new Promise<void>((r) => holder.close(() => r()));
    await web.setPlan(webPlan(3, taken));
    expect(await tcpRoundTrip(taken, 'moved')).to.equal('moved');
    expect(await accepts(first)).to.equal(false);
  });

  it('a failed move still applies the new intentions to the listener that serves', async () => {
    const via = web.upstreamPort('api')!;
    const apiPlan = api.plan!;
    const held = createServer((c) => c.destroy());
    const taken = await listenOn(held, 0);
    try {
      let err: unknown;
      try {
        await api.setPlan({
          ...apiPlan,
          version: apiPlan.version + 1,
          inbound: { ...apiPlan.inbound, bindPort: taken },
          defaultAllow: false,
        });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(ListenError);
      // The old listener still answers, and now refuses web: nothing allows it any more.
      expect(api.plan!.inbound.bindPort).to.equal(apiPlan.inbound.bindPort);
      expect(await tcpRoundTrip(via, 'denied?')).to.equal('');
      await api.setPlan({ ...apiPlan, version: apiPlan.version + 2 });
      expect(await tcpRoundTrip(via, 'allowed')).to.equal('allowed');
    } finally {
      held.close();
    }
  });

  it('keeps open connections of the old listener while the new one takes new ones', async () => {
    const before = web.upstreamPort('api')!;
    const open = connect({ host: '127.0.0.1', port: before });
    open.on('error', () => {});
    const first = new Promise<string>((r) => open.once('data', (d) => r(d.toString())));
    open.write('a');
    expect(await first).to.equal('a');
    const next = await freePort();
    await web.setPlan(webPlan(4, next));
    expect(await tcpRoundTrip(next, 'new')).to.equal('new');
    const second = new Promise<string>((r) => open.once('data', (d) => r(d.toString())));
    open.write('b');
    expect(await second).to.equal('b');
    open.destroy();
  });

  it('moves a listener to another address on the same port', async () => {
    const port = web.upstreamPort('api')!;
    const p = webPlan(5, port);
    await web.setPlan({ ...p, upstreams: [{ ...p.upstreams[0]!, bindAddress: '0.0.0.0' }] });
    expect(await tcpRoundTrip(port, 'wild')).to.equal('wild');
    expect(web.plan!.version).to.equal(5);
  });
});
