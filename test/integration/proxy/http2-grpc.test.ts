/**
 * HTTP between proxies (real sockets, real mutual TLS): requests from the application go over
 * pooled connections to the destination's proxy (one multiplexed HTTP/2 session by default,
 * or HTTP/1.1 keep-alive), HTTP/2 and gRPC applications work end to end with trailers and
 * streaming, every request is decided and counted, and the proxy's own answers carry their
 * reason code.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { Agent, request as httpRequest, createServer, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import {
  connect as h2connect,
  createServer as createH2Server,
  type Http2Server,
  type IncomingHttpHeaders,
} from 'node:http2';
import { systemClock } from '../../../src/core/index.js';
import type { IntentionRule } from '../../../src/policy/index.js';
import {
  ServiceProxy,
  type Protocol,
  type ProxyPlan,
  type UpstreamPlan,
} from '../../../src/proxy/index.js';
import { createRegistry, proxyMetrics, type Registry } from '../../../src/telemetry/metrics.js';
import { GrpcClient, startGrpcApp, unary, type Msg } from '../../helpers/grpc-echo.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';

const quiet = { info() {}, warn() {} };
const mesh = testCa();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function h1(port: number, path: string, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, method }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

function h2(
  port: number,
  path: string,
  extra: Record<string, string> = {},
): Promise<Answer & { trailers: IncomingHttpHeaders | undefined }> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`http://127.0.0.1:${port}`);
    s.on('error', reject);
    const r = s.request({ ':path': path, ...extra });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let b = '';
    r.on('response', (h) => (head = h));
    r.on('trailers', (t) => (trailers = t));
    r.on('data', (d) => (b += d));
    r.on('end', () => {
      s.close();
      resolve({ status: Number(head[':status']), headers: head, body: b, trailers });
    });
    r.on('error', reject);
    r.end();
  });
}

/** A pair of proxies: `web` (client side) and `dest` (server side) in front of an app. */
class Pair {
  readonly dest: ServiceProxy;
  readonly web: ServiceProxy;
  readonly registry: Registry;
  readonly log: Record<string, unknown>[] = [];
  destPlan!: ProxyPlan;

  constructor(upstreamHttp: 'h2' | 'http1' = 'h2') {
    this.registry = createRegistry();
    const metrics = proxyMetrics(this.registry);
    const accessLog = {
      info: (o: object) => this.log.push(o as Record<string, unknown>),
      warn() {},
    };
    this.dest = new ServiceProxy({ clock: systemClock, log: quiet, metrics, accessLog });
    this.web = new ServiceProxy({
      clock: systemClock,
      log: quiet,
      metrics,
      accessLog,
      upstreamHttp,
    });
  }

  async start(
    service: string,
    appPort: number,
    protocol: Protocol,
    intentions: IntentionRule[] = [],
  ): Promise<number> {
    this.destPlan = plan(service, appPort, protocol, intentions);
    await this.dest.setPlan(this.destPlan);
    await this.web.setPlan({
      ...plan('web', 1, 'tcp', []),
      upstreams: [upstream(service, protocol, [this.dest.inboundPort()!])],
    });
    return this.web.upstreamPort(service)!;
  }

  async stop(): Promise<void> {
    await this.web.stop();
    await this.dest.stop();
  }
}

function plan(
  service: string,
  appPort: number,
  protocol: Protocol,
  intentions: IntentionRule[],
): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions,
    defaultAllow: true,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: appPort },
      protocol,
    },
    upstreams: [],
  };
}

function upstream(
  service: string,
  protocol: Protocol,
  ports: number[],
  balancer: UpstreamPlan['balancer'] = 'round_robin',
): UpstreamPlan {
  return {
    destination: service,
    bindAddress: '127.0.0.1',
    bindPort: 0,
    identity: spiffeUri(service),
    endpoints: ports.map((port, i) => ({ address: '127.0.0.1', port, node: `n${i}` })),
    protocol,
    balancer,
  };
}

const listen = (s: Server | Http2Server): Promise<number> =>
  new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

describe('proxy: HTTP between proxies, HTTP/2 and gRPC (real sockets)', function () {
  this.timeout(30_000);

  // HTTP/1.1 clients are spliced over pooled HTTP/1.1 connections between the proxies; the
  // HTTP/2 setting of the pair applies to HTTP/2 clients.
  describe('an HTTP/1.1 app and HTTP/1.1 clients, pooled between the proxies', () => {
    let app: Server;
    let pair: Pair;
    let port: number;
    const conns = new Set<unknown>();
    const seen: { url: string; xfcc: unknown; te: unknown }[] = [];

    before(async () => {
      app = createServer((req, res) => {
        seen.push({
          url: req.url ?? '',
          xfcc: req.headers['x-forwarded-client-cert'],
          te: req.headers['transfer-encoding'],
        });
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => res.end(`${req.method} ${req.url} ${body.length}`));
      });
      app.on('connection', (s) => conns.add(s));
      pair = new Pair('h2');
      port = await pair.start('api', await listen(app), 'http', [
        {
          ID: 'web => api',
          SourceName: 'web',
          DestinationName: 'api',
          Permissions: [
            { Action: 'deny', HTTP: { PathPrefix: '/admin' } },
            { Action: 'allow', HTTP: { PathPrefix: '/' } },
          ],
        },
      ]);
    });

    after(async () => {
      await pair.stop();
      app.close();
    });

    it('carries requests and bodies, and tells the app who called', async () => {
      const r = await h1(port, '/items?q=1', 'POST', 'x'.repeat(10_000));
      expect([r.status, r.body]).to.deep.equal([200, 'POST /items?q=1 10000']);
      const last = seen[seen.length - 1]!;
      expect(last.xfcc).to.equal(`By=${spiffeUri('api')};URI=${spiffeUri('web')}`);
    });

    it('reuses pooled connections to the other proxy and the app', async () => {
      const before = conns.size;
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => h1(port, `/n/${i}`)));
      expect(all.every((a) => a.status === 200)).to.equal(true);
      // Connections between the proxies and to the app are reused, not one per request.
      expect(conns.size - before).to.be.below(50);
      // A record is written when the proxy's response has finished, which may be just after
      // the client has read it all.
      const pooled = (): number =>
        pair.log.filter((l) => l.direction === 'outbound' && l.protocol).length;
      for (let i = 0; i < 100 && pooled() <= 50; i++) await new Promise((r) => setTimeout(r, 20));
      expect(pooled()).to.be.greaterThan(50);
    });

    it('refuses denied paths with 403 and x-trellis-reason, and the app never sees them', async () => {
      const n = seen.length;
      const r = await h1(port, '/admin/users');
      expect([r.status, r.headers['x-trellis-reason']]).to.deep.equal([403, 'UAEX']);
      expect(seen.length).to.equal(n);
    });

    it('refuses the next request on a pooled connection once an intention denies the caller', async () => {
      expect((await h1(port, '/before')).status).to.equal(200);
      await pair.dest.setPlan({
        ...pair.destPlan,
        version: 2,
        intentions: [{ ID: 'deny', SourceName: 'web', DestinationName: 'api', Action: 'deny' }],
      });
      const r = await h1(port, '/after');
      expect([r.status, r.headers['x-trellis-reason']]).to.deep.equal([403, 'UAEX']);
      await pair.dest.setPlan({ ...pair.destPlan, version: 3 });
      expect((await h1(port, '/again')).status).to.equal(200);
    });

    it('answers a request it cannot parse itself, with its reason code, and counts it', async () => {
      const raw = await new Promise<string>((resolve, reject) => {
        const c = netConnect(port, '127.0.0.1', () =>
          c.end('GET http://elsewhere/x HTTP/1.1\r\nHost: api\r\n\r\n'),
        );
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('close', () => resolve(got));
        c.on('error', reject);
      });
      expect(raw).to.match(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(raw).to.match(/\r\nx-trellis-reason: DPE\r\n/i);
      expect(await pair.registry.metrics()).to.match(
        /trellis_http_requests_total\{direction="outbound",source_service="web",destination_service="api",response_code="400",response_flags="DPE"\} 1/,
      );
      expect(pair.log.find((l) => l.response_flags === 'DPE')).to.include({
        direction: 'outbound',
        method: '-',
        response_code: 400,
      });
    });

    it('logs the path that policy judged and the app received, not the one sent', async () => {
      const r = await h1(port, '//admin//x');
      expect([r.status, r.headers['x-trellis-reason']]).to.deep.equal([403, 'UAEX']);
      const lines = pair.log.filter((l) => l.path === '/admin/x' && l.response_code === 403);
      expect(lines.map((l) => l.direction).sort()).to.deep.equal(['inbound', 'outbound']);
      expect(pair.log.some((l) => String(l.path).includes('//'))).to.equal(false);
    });

    it('counts requests by services, code and flags, and logs one line per request', async () => {
      await h1(port, '/admin/x');
      const text = await pair.registry.metrics();
      expect(text).to.match(
        /trellis_http_requests_total\{direction="inbound",source_service="web",destination_service="api",response_code="403",response_flags="UAEX"\} \d+/,
      );
      expect(text).to.match(
        /trellis_http_requests_total\{direction="outbound",source_service="web",destination_service="api",response_code="200",response_flags="-"\} \d+/,
      );
      expect(text).to.match(/trellis_http_request_duration_seconds_bucket\{le="0.5",direction=/);
      expect(text).to.match(/trellis_http_response_bytes_total\{direction="inbound"/);
      const line = pair.log.find((l) => l.direction === 'inbound' && l.path === '/admin/x');
      expect(line).to.include({
        source_service: 'web',
        destination_service: 'api',
        response_code: 403,
        response_flags: 'UAEX',
        protocol: 'HTTP/1.1',
        method: 'GET',
      });
    });
  });

  it('also works with HTTP/1.1 keep-alive pools between the proxies', async () => {
    const app = createServer((req, res) => res.end(`ok ${req.url}`));
    const pair = new Pair('http1');
    try {
      const port = await pair.start('api', await listen(app), 'http');
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => h1(port, `/k/${i}`)));
      expect(all.map((a) => a.status)).to.deep.equal(Array(20).fill(200));
      expect(pair.log.find((l) => l.direction === 'inbound')).to.include({ protocol: 'HTTP/1.1' });
    } finally {
      await pair.stop();
      app.close();
    }
  });

  for (const between of ['http1', 'h2'] as const)
    it(`carries HTTP/2 clients of an HTTP/1.1 app, bodies included (${between} between the proxies)`, async () => {
      const app = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => res.end(`${req.method} ${req.url} ${body.length}`));
      });
      const pair = new Pair(between);
      try {
        const port = await pair.start('api', await listen(app), 'http');
        const got = await h2(port, '/via-h1');
        expect(got).to.include({ status: 200, body: 'GET /via-h1 0' });
        // A body from an HTTP/2 client crosses as an HTTP/1.1 body.
        const s = h2connect(`http://127.0.0.1:${port}`);
        const r = s.request({ ':method': 'POST', ':path': '/upload' });
        let answer = '';
        r.on('data', (d) => (answer += d));
        r.end('x'.repeat(100_000));
        await new Promise((res) => r.once('end', res));
        s.close();
        expect(answer).to.equal('POST /upload 100000');
        expect(pair.log.find((l) => l.direction === 'inbound')).to.include({
          protocol: between === 'h2' ? 'HTTP/2' : 'HTTP/1.1',
        });
      } finally {
        await pair.stop();
        app.close();
      }
    });

  it('carries an HTTP/2 app end to end, trailers included', async () => {
    const app = createH2Server();
    app.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'x-app': 'yes' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end(`h2 ${String(headers[':path'])} ${String(headers['x-forwarded-client-cert'])}`);
    });
    const pair = new Pair();
    try {
      const port = await pair.start('h2svc', await listen(app), 'http2');
      const r = await h2(port, '/p');
      expect(r.status).to.equal(200);
      expect(r.headers['x-app']).to.equal('yes');
      expect(r.body).to.equal(`h2 /p By=${spiffeUri('h2svc')};URI=${spiffeUri('web')}`);
      expect(r.trailers?.['x-checksum']).to.equal('abc');
      // An HTTP/1.1 client of the same upstream listener works too.
      expect((await h1(port, '/q')).status).to.equal(200);
    } finally {
      await pair.stop();
      app.close();
    }
  });

  describe('gRPC (@grpc/grpc-js client and server)', () => {
    let app: { server: grpc.Server; port: number };
    let pair: Pair;
    let client: grpc.Client;

    before(async () => {
      app = await startGrpcApp();
      pair = new Pair();
      const port = await pair.start('grpcsvc', app.port, 'grpc', [
        {
          ID: 'web => grpcsvc',
          SourceName: 'web',
          DestinationName: 'grpcsvc',
          Permissions: [
            { Action: 'deny', HTTP: { PathExact: '/trellis.test.Echo/Sum' } },
            { Action: 'allow', HTTP: { PathPrefix: '/trellis.test.Echo/' } },
          ],
        },
      ]);
      client = new GrpcClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    });

    after(async () => {
      client.close();
      await pair.stop();
      app.server.forceShutdown();
    });

    it('makes unary calls, with the verified caller in metadata', async () => {
      const r = await unary(client, 'Echo', { text: 'hello' });
      expect(r).to.deep.equal({
        text: 'hello',
        caller: `By=${spiffeUri('grpcsvc')};URI=${spiffeUri('web')}`,
      });
    });

    it('streams server responses', async () => {
      const call = (
        client as unknown as Record<string, (m: Msg) => grpc.ClientReadableStream<Msg>>
      ).Count!.call(client, { n: 25 });
      const got: number[] = [];
      await new Promise<void>((resolve, reject) => {
        call.on('data', (m: Msg) => got.push(m.n ?? 0));
        call.on('end', () => resolve());
        call.on('error', reject);
      });
      expect(got).to.deep.equal(Array.from({ length: 25 }, (_, i) => i + 1));
    });

    it("passes the app's error status through the trailers", async () => {
      const err = await unary(client, 'Missing', {}).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect([err?.code, err?.details]).to.deep.equal([grpc.status.NOT_FOUND, 'no such thing']);
    });

    it('answers a call an intention denies with PERMISSION_DENIED', async () => {
      const call = await new Promise<grpc.ServiceError | null>((resolve) => {
        const c = (
          client as unknown as Record<
            string,
            (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Msg>
          >
        ).Sum!.call(client, (e) => resolve(e));
        c.write({ n: 1 });
        c.end();
      });
      expect(call?.code).to.equal(grpc.status.PERMISSION_DENIED);
      expect(call?.metadata.get('x-trellis-reason')).to.deep.equal(['UAEX']);
    });
  });

  it('picks endpoints by least request and stops sending to one that is down', async () => {
    const hits = new Map<number, number>();
    const apps: Server[] = [];
    const dests: ServiceProxy[] = [];
    const web = new ServiceProxy({ clock: systemClock, log: quiet, accessLog: false });
    try {
      for (let i = 0; i < 3; i++) {
        const app = createServer((_req, res) => {
          hits.set(i, (hits.get(i) ?? 0) + 1);
          res.end(String(i));
        });
        apps.push(app);
        const d = new ServiceProxy({ clock: systemClock, log: quiet, accessLog: false });
        await d.setPlan(plan('api', await listen(app), 'http', []));
        dests.push(d);
      }
      const ports = dests.map((d) => d.inboundPort()!);
      await web.setPlan({
        ...plan('web', 1, 'tcp', []),
        upstreams: [upstream('api', 'http', ports, 'least_request')],
      });
      const port = web.upstreamPort('api')!;
      await Promise.all(Array.from({ length: 60 }, () => h1(port, '/')));
      expect([...hits.values()].reduce((a, b) => a + b, 0)).to.equal(60);
      expect(hits.size).to.equal(3);
      await dests[0]!.stop();
      const after = await Promise.all(Array.from({ length: 20 }, () => h1(port, '/')));
      expect(after.map((a) => a.status)).to.deep.equal(Array(20).fill(200));
    } finally {
      await web.stop();
      for (const d of dests) await d.stop();
      for (const a of apps) a.close();
    }
  });

  it('swaps certificates on both proxies under load without failing a request', async () => {
    const app = createServer((req, res) => res.end(`ok ${req.url}`));
    const pair = new Pair();
    const failures: string[] = [];
    let done = 0;
    try {
      const port = await pair.start('api', await listen(app), 'http');
      const webPlan = pair.web.plan!;
      let stop = false;
      const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const r = await new Promise<string>((resolve) => {
            const q = httpRequest(
              { host: '127.0.0.1', port, path: `/w${w}/${i}`, agent: w % 2 ? keepAlive : false },
              (res) => {
                let b = '';
                res.on('data', (d) => (b += d));
                res.on('end', () =>
                  resolve(res.statusCode === 200 ? '' : `${res.statusCode} ${b}`),
                );
              },
            );
            q.on('error', (e) => resolve(e.message));
            q.end();
          });
          if (r) failures.push(`w${w}/${i}: ${r}`);
          done++;
        }
      };
      const workers = [0, 1, 2, 3].map(worker);
      for (let v = 10; v < 40; v++) {
        await new Promise((r) => setTimeout(r, 40));
        const tls = (svc: string) => ({
          ...mesh.leaf(svc),
          roots: [mesh.rootPem],
          notAfter: Date.now() + 3600_000,
        });
        await pair.web.setPlan({ ...webPlan, version: v, tls: tls('web') });
        await pair.dest.setPlan({ ...pair.destPlan, version: v, tls: tls('api') });
      }
      stop = true;
      await Promise.all(workers);
      keepAlive.destroy();
      expect(done).to.be.greaterThan(30);
      expect(failures).to.deep.equal([]);
    } finally {
      await pair.stop();
      app.close();
    }
  });

  it('refuses an upstream that proves another identity, with reason UI, before sending', async () => {
    let reached = 0;
    const app = createServer((_req, res) => {
      reached++;
      res.end();
    });
    const pair = new Pair();
    try {
      await pair.start('api', await listen(app), 'http');
      // web expects "db" at api's address: the handshake proves api, so nothing is sent.
      await pair.web.setPlan({
        ...plan('web', 1, 'tcp', []),
        version: 2,
        upstreams: [
          { ...upstream('db', 'http', [pair.dest.inboundPort()!]), identity: spiffeUri('db') },
        ],
      });
      const r = await h1(pair.web.upstreamPort('db')!, '/');
      expect([r.status, r.headers['x-trellis-reason']]).to.deep.equal([503, 'UI']);
      expect(reached).to.equal(0);
    } finally {
      await pair.stop();
      app.close();
    }
  });
});
