/**
 * Who may talk to a proxy, and whom a proxy will talk to, with certificates the mesh CA's own
 * issuing code signed (so the chain is always valid and only the identity or the extensions are
 * wrong): every SPIFFE id spelling other than exactly spiffe://<our trust domain>/ns/default/
 * dc/<dc>/svc/<name>, and every certificate that is not an end-entity certificate for its TLS
 * role, is refused on real mTLS listeners, inbound and outbound, before the application sees a
 * byte. What the application does see in X-Forwarded-Client-Cert is only our own URI.
 */
import { expect } from 'chai';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type Protocol, type ProxyPlan } from '../../../src/proxy/index.js';
import {
  TEST_TD,
  spiffeUri,
  testCa,
  type CustomLeaf,
  type TestLeaf,
} from '../../helpers/mesh-ca.js';

const TD = TEST_TD;
const mesh = testCa();
const OTHER = 'other-trust.consul';

interface LogLine {
  msg: string;
  obj: Record<string, unknown>;
}

function recorder(): { lines: LogLine[]; info(o: object, m: string): void; warn(): void } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (o, m) => void lines.push({ msg: m, obj: o as Record<string, unknown> }),
    warn() {},
  };
}

function plan(
  service: string,
  appPort: number,
  protocol: Protocol,
  tls: TestLeaf = mesh.leaf(service),
  extra: Partial<ProxyPlan> = {},
): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...tls, roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: true,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: appPort },
      protocol,
    },
    upstreams: [],
    ...extra,
  };
}

const listen = (s: Server): Promise<number> =>
  new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

/** Dials the proxy's public listener with `leaf` and sends one HTTP request; returns all it got. */
function callWith(port: number, leaf: TestLeaf): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: leaf.certChain,
      key: leaf.key,
      ca: [mesh.rootPem],
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    s.on('secureConnect', () =>
      s.write('GET /x HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n'),
    );
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    s.setTimeout(5000, () => s.destroy());
  });
}

/** The SPIFFE id vectors: each must be refused as a caller's identity. */
const BAD_IDS: [string, string[]][] = [
  ['another trust domain', [spiffeUri('web', OTHER)]],
  ['a trust domain with ours as suffix', [spiffeUri('web', `evil-${TD}`)]],
  ['a trust domain with ours as prefix', [spiffeUri('web', `${TD}.evil`)]],
  ['a subdomain of ours', [spiffeUri('web', `x.${TD}`)]],
  ['our trust domain upper-cased', [spiffeUri('web', TD.toUpperCase())]],
  ['an upper-case scheme', [`SPIFFE://${TD}/ns/default/dc/dc1/svc/web`]],
  ['upper-case path keywords', [`spiffe://${TD}/NS/default/DC/dc1/SVC/web`]],
  ['a fragment', [`${spiffeUri('web')}#frag`]],
  ['a query', [`${spiffeUri('web')}?x=1`]],
  ['an extra segment', [`${spiffeUri('web')}/extra`]],
  ['a missing segment', [`spiffe://${TD}/ns/default/svc/web`]],
  ['a percent-encoded name', [`spiffe://${TD}/ns/default/dc/dc1/svc/%77eb`]],
  ['a trailing slash', [`${spiffeUri('web')}/`]],
  ['an empty name', [`spiffe://${TD}/ns/default/dc/dc1/svc/`]],
  ['a dot-dot name', [`spiffe://${TD}/ns/default/dc/dc1/svc/..`]],
  ['another namespace', [`spiffe://${TD}/ns/other/dc/dc1/svc/web`]],
  ['a userinfo', [`spiffe://user@${TD}/ns/default/dc/dc1/svc/web`]],
  ['a port', [`spiffe://${TD}:443/ns/default/dc/dc1/svc/web`]],
  ['an agent id', [`spiffe://${TD}/agent/client/dc/dc1/id/node1`]],
  ['a trust-domain-only id', [`spiffe://${TD}`]],
  ['two URIs', [spiffeUri('web'), spiffeUri('admin')]],
  ['two URIs, the same twice', [spiffeUri('web'), spiffeUri('web')]],
  ['no URI', []],
];

/** Extension vectors for a caller's certificate (all with a valid id). */
const BAD_CLIENT_CERTS: [string, Omit<CustomLeaf, 'uris'>][] = [
  ['a CA:TRUE leaf', { isCA: true, extKeyUsage: ['clientAuth', 'serverAuth'] }],
  [
    'a CA:TRUE leaf with a leaf key usage',
    { isCA: true, keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: ['clientAuth'] },
  ],
  [
    'a leaf with keyCertSign',
    { keyUsage: ['digitalSignature', 'keyCertSign'], extKeyUsage: ['clientAuth'] },
  ],
  [
    'a leaf with cRLSign',
    { keyUsage: ['digitalSignature', 'cRLSign'], extKeyUsage: ['clientAuth'] },
  ],
  ['a leaf without extended key usage', { extKeyUsage: [] }],
  ['a leaf for servers only (serverAuth)', { extKeyUsage: ['serverAuth'] }],
];

/** Extension vectors for a dialled server's certificate (all with the right id). */
const BAD_SERVER_CERTS: [string, Omit<CustomLeaf, 'uris'>][] = [
  ['a CA:TRUE leaf', { isCA: true, extKeyUsage: ['clientAuth', 'serverAuth'] }],
  [
    'a CA:TRUE leaf with a leaf key usage',
    { isCA: true, keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: ['serverAuth'] },
  ],
  [
    'a leaf with keyCertSign',
    { keyUsage: ['digitalSignature', 'keyCertSign'], extKeyUsage: ['serverAuth'] },
  ],
  ['a leaf without extended key usage', { extKeyUsage: [] }],
  ['a leaf for clients only (clientAuth)', { extKeyUsage: ['clientAuth'] }],
];

describe('proxy: peer identities and certificate roles (real mTLS, certificates from the mesh CA)', function () {
  this.timeout(60_000);

  describe('inbound: who may call', () => {
    let app: Server;
    const seen: { xfcc: unknown }[] = [];
    let log: ReturnType<typeof recorder>;
    let http: ServiceProxy;
    let tcp: ServiceProxy;
    let tcpAccepted = 0;
    let tcpApp: import('node:net').Server;

    before(async () => {
      app = createServer((req, res) => {
        seen.push({ xfcc: req.headers['x-forwarded-client-cert'] });
        res.end('ok');
      });
      const port = await listen(app);
      const { createServer: createNetServer } = await import('node:net');
      tcpApp = createNetServer((s) => {
        tcpAccepted++;
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      });
      const tcpPort = await listen(tcpApp as unknown as Server);
      log = recorder();
      http = new ServiceProxy({ clock: systemClock, log, accessLog: false });
      tcp = new ServiceProxy({ clock: systemClock, log, accessLog: false });
      // A trust domain accepted explicitly (a migration): only it, whole.
      await http.setPlan(
        plan('api', port, 'http', mesh.leaf('api'), { acceptedTrustDomains: ['old-td.consul'] }),
      );
      await tcp.setPlan(plan('api', tcpPort, 'tcp'));
    });

    after(async () => {
      await http.stop();
      await tcp.stop();
      app.close();
      tcpApp.close();
    });

    beforeEach(() => {
      seen.length = 0;
      tcpAccepted = 0;
      log.lines.length = 0;
    });

    it('serves our own service id, and XFCC carries exactly that URI', async () => {
      const got = await callWith(http.inboundPort()!, mesh.custom({ uris: [spiffeUri('web')] }));
      expect(got).to.match(/^HTTP\/1\.1 200/);
      expect(seen).to.deep.equal([{ xfcc: `By=${spiffeUri('api')};URI=${spiffeUri('web')}` }]);
    });

    it('serves a leaf made for clients only (clientAuth)', async () => {
      const leaf = mesh.custom({ uris: [spiffeUri('web')], extKeyUsage: ['clientAuth'] });
      expect(await callWith(http.inboundPort()!, leaf)).to.match(/^HTTP\/1\.1 200/);
      expect(await callWith(tcp.inboundPort()!, leaf)).to.match(/^HTTP\/1\.1 200/);
    });

    it('accepts a trust domain listed for a migration, whole, and nothing that merely resembles it', async () => {
      const ok = mesh.custom({ uris: [spiffeUri('web', 'old-td.consul')] });
      expect(await callWith(http.inboundPort()!, ok)).to.match(/^HTTP\/1\.1 200/);
      expect(seen).to.deep.equal([
        { xfcc: `By=${spiffeUri('api')};URI=${spiffeUri('web', 'old-td.consul')}` },
      ]);
      seen.length = 0;
      for (const td of ['evil-old-td.consul', 'old-td.consul.evil', 'td.consul', 'OLD-TD.consul']) {
        const bad = mesh.custom({ uris: [spiffeUri('web', td)] });
        expect(await callWith(http.inboundPort()!, bad), td).to.equal('');
      }
      expect(seen).to.deep.equal([]);
      // The TCP proxy lists no migration: the old domain is refused there.
      expect(await callWith(tcp.inboundPort()!, ok)).to.equal('');
      expect(tcpAccepted).to.equal(0);
    });

    for (const [name, uris] of BAD_IDS) {
      it(`refuses a caller whose certificate names ${name}; the app gets nothing`, async () => {
        const leaf = mesh.custom({ uris });
        expect(await callWith(http.inboundPort()!, leaf)).to.equal('');
        expect(await callWith(tcp.inboundPort()!, leaf)).to.equal('');
        expect(seen).to.deep.equal([]);
        expect(tcpAccepted).to.equal(0);
        const refusals = log.lines.filter((l) => /refused/.test(l.msg));
        expect(refusals.length).to.equal(2);
        for (const r of refusals) expect(r.obj.reason).to.equal('UAEX');
      });
    }

    for (const [name, spec] of BAD_CLIENT_CERTS) {
      it(`refuses a caller presenting ${name}; the app gets nothing`, async () => {
        const leaf = mesh.custom({ uris: [spiffeUri('web')], ...spec });
        expect(await callWith(http.inboundPort()!, leaf)).to.equal('');
        expect(await callWith(tcp.inboundPort()!, leaf)).to.equal('');
        expect(seen).to.deep.equal([]);
        expect(tcpAccepted).to.equal(0);
        expect(log.lines.filter((l) => /refused/.test(l.msg)).length).to.equal(2);
      });
    }
  });

  describe('outbound: whom a proxy will send to', () => {
    let app: Server;
    let reached = 0;
    let appPort: number;

    before(async () => {
      app = createServer((_req, res) => {
        reached++;
        res.end('ok');
      });
      appPort = await listen(app);
    });
    after(() => app.close());
    beforeEach(() => (reached = 0));

    /** A "db" endpoint presenting `leaf`, and a caller whose upstream db points at it. */
    async function callDb(
      leaf: TestLeaf,
      protocol: Protocol,
    ): Promise<{ status: number | string; reason: unknown; log: LogLine[] }> {
      const log = recorder();
      const db = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
      const web = new ServiceProxy({ clock: systemClock, log, accessLog: false });
      try {
        await db.setPlan(plan('db', appPort, protocol, leaf));
        await web.setPlan(
          plan('web', 1, 'tcp', mesh.leaf('web'), {
            upstreams: [
              {
                destination: 'db',
                bindAddress: '127.0.0.1',
                bindPort: 0,
                identity: spiffeUri('db'),
                endpoints: [{ address: '127.0.0.1', port: db.inboundPort()!, node: 'n1' }],
                protocol,
                balancer: 'round_robin',
              },
            ],
          }),
        );
        const r = await new Promise<{ status: number | string; reason: unknown }>((resolve) => {
          const q = httpRequest(
            { host: '127.0.0.1', port: web.upstreamPort('db'), path: '/', method: 'POST' },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, reason: res.headers['x-trellis-reason'] }),
              );
            },
          );
          q.on('error', (e) =>
            resolve({ status: (e as NodeJS.ErrnoException).code ?? 'error', reason: undefined }),
          );
          q.end('payload');
        });
        return { ...r, log: log.lines };
      } finally {
        await web.stop();
        await db.stop();
      }
    }

    it('sends to an endpoint with a serverAuth-only leaf of the destination (control)', async () => {
      const leaf = mesh.custom({ uris: [spiffeUri('db')], extKeyUsage: ['serverAuth'] });
      expect((await callDb(leaf, 'http')).status).to.equal(200);
      expect(reached).to.equal(1);
    });

    const serverIds: [string, string[]][] = [
      ['another trust domain', [spiffeUri('db', OTHER)]],
      ['a trust domain with ours as suffix', [spiffeUri('db', `evil-${TD}`)]],
      ['another service', [spiffeUri('api')]],
      ['two URIs', [spiffeUri('db'), spiffeUri('api')]],
      ['a query', [`${spiffeUri('db')}?x`]],
    ];
    for (const [name, uris] of serverIds) {
      it(`refuses an endpoint proving ${name}: 503 UI, nothing sent`, async () => {
        const r = await callDb(mesh.custom({ uris }), 'http');
        expect([r.status, r.reason]).to.deep.equal([503, 'UI']);
        expect(reached).to.equal(0);
      });
    }

    for (const [name, spec] of BAD_SERVER_CERTS) {
      it(`refuses an endpoint presenting ${name}: 503 UI (HTTP), closed (TCP), nothing sent`, async () => {
        const leaf = mesh.custom({ uris: [spiffeUri('db')], ...spec });
        // Some of these fail TLS's own purpose check first (UF: the handshake failed), the rest
        // the proxy's end-entity check (UI); either way nothing is sent.
        const r = await callDb(leaf, 'http');
        expect(r.status).to.equal(503);
        expect(r.reason).to.be.oneOf(['UI', 'UF']);
        const t = await callDb(leaf, 'tcp');
        expect(t.status).to.be.a('string'); // the connection was closed: no HTTP answer
        expect(reached).to.equal(0);
        const failed = t.log.filter((l) => l.msg === 'outbound connection failed');
        expect(failed.map((l) => l.obj.reason)).to.deep.equal([r.reason]);
      });
    }
  });
});
