/**
 * When an endpoint cannot take a request, real proxies over real mTLS:
 *   - an upstream proxy whose application is gone answers 503 LF ("never reached the app"); the
 *     caller's proxy resends the request, POSTs and their bodies included, once, to another
 *     endpoint, and leaves the dead one out (ejection), so every request succeeds;
 *   - a body larger than what is kept for a resend is not resent (503 LF reaches the client);
 *   - an application cannot fake that answer (its x-trellis-reason is stripped), so a request
 *     an application did see is never sent twice;
 *   - endpoints that prove another identity are each tried once per request, then 503 UI, logged.
 */
import { expect } from 'chai';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type Protocol, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';

const mesh = testCa();

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

function plan(service: string, appPort: number, protocol: Protocol): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
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

/** An app that answers with its name and how many body bytes it read. */
class App {
  readonly server: Server;
  readonly seen: string[] = [];
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(
    readonly name: string,
    answer?: (res: import('node:http').ServerResponse) => void,
  ) {
    this.server = createServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        this.seen.push(`${req.method} ${n}`);
        if (answer) return answer(res);
        res.end(`${this.name} ${n}`);
      });
    });
    this.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** As if the process died: the port refuses connections and open ones are reset. */
  async kill(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface Answer {
  status: number;
  reason: unknown;
  body: string;
}

function send(port: number, method: string, body: string, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const q = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        method,
        agent,
        headers: body ? { 'content-length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            reason: res.headers['x-trellis-reason'],
            body: b,
          }),
        );
      },
    );
    q.on('error', reject);
    q.end(body || undefined);
  });
}

/** A caller ("web") whose upstream "api" has the given endpoints (proxies' inbound ports). */
async function caller(
  ports: number[],
  log = recorder(),
  identity = spiffeUri('api'),
  upstreamHttp: 'h2' | 'http1' = 'h2',
): Promise<ServiceProxy> {
  const web = new ServiceProxy({ clock: systemClock, log, accessLog: false, upstreamHttp });
  await web.setPlan({
    ...plan('web', 1, 'tcp'),
    upstreams: [
      {
        destination: 'api',
        bindAddress: '127.0.0.1',
        bindPort: 0,
        identity,
        endpoints: ports.map((port, i) => ({ address: '127.0.0.1', port, node: `n${i}` })),
        protocol: 'http',
        balancer: 'round_robin',
      },
    ],
  });
  return web;
}

/** Counts TCP connections to `port` (handshake attempts) and forwards them. */
async function counter(
  port: number,
): Promise<{ port: number; count: () => number; close(): void }> {
  let n = 0;
  const srv = createNetServer((c) => {
    n++;
    const up = netConnect({ host: '127.0.0.1', port });
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    count: () => n,
    close: () => srv.close(),
  };
}

describe('proxy: resending refused requests, ejecting dead endpoints (real mTLS)', function () {
  this.timeout(60_000);

  for (const upstreamHttp of ['h2', 'http1'] as const) {
    it(`${upstreamHttp}: an app killed behind one of two endpoints fails no request, POSTs included, and its endpoint is ejected`, async () => {
      const a = new App('a');
      const b = new App('b');
      const destA = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
      const destB = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
      await destA.setPlan(plan('api', await a.start(), 'http'));
      await destB.setPlan(plan('api', await b.start(), 'http'));
      const log = recorder();
      const web = await caller(
        [destA.inboundPort()!, destB.inboundPort()!],
        log,
        undefined,
        upstreamHttp,
      );
      const keep = new Agent({ keepAlive: true, maxSockets: 4 });
      try {
        // Both serve, in turn.
        const warm = await Promise.all(
          [0, 1, 2, 3].map(() => send(web.upstreamPort('api')!, 'GET', '', keep)),
        );
        expect(warm.map((r) => r.body.split(' ')[0]).sort()).to.deep.equal(['a', 'a', 'b', 'b']);
        await a.kill();
        b.seen.length = 0;
        const big = 'x'.repeat(40_000); // larger than one HTTP/2 frame, within what is kept
        const answers: Answer[] = [];
        for (let i = 0; i < 12; i++) {
          const method = i % 3 === 0 ? 'GET' : i % 3 === 1 ? 'POST' : 'PUT';
          const body = method === 'GET' ? '' : i % 2 ? big : `body-${i}`;
          answers.push(await send(web.upstreamPort('api')!, method, body, i % 2 ? keep : false));
        }
        expect(answers.map((r) => r.status)).to.deep.equal(Array(12).fill(200));
        // Each request reached b exactly once, with its whole body.
        expect(answers.map((r) => r.body)).to.deep.equal(b.seen.map((s) => `b ${s.split(' ')[1]}`));
        expect(b.seen.length).to.equal(12);
        expect(a.seen.length).to.equal(2); // only the warm-up
        // a's endpoint was ejected after its first refusal: one ejection, logged with LF.
        const ejected = log.lines.filter((l) => l.msg === 'upstream endpoint ejected');
        expect(ejected.map((l) => [l.obj.endpoint, l.obj.reason])).to.deep.equal([
          [`127.0.0.1:${destA.inboundPort()}`, 'LF'],
        ]);
      } finally {
        keep.destroy();
        await web.stop();
        await destA.stop();
        await destB.stop();
        b.server.close();
      }
    });
  }

  it('does not resend a body larger than what is kept: 503 LF, the other app sees nothing', async () => {
    const a = new App('a');
    const b = new App('b');
    const destA = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    const destB = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    await destA.setPlan(plan('api', await a.start(), 'http'));
    await destB.setPlan(plan('api', await b.start(), 'http'));
    await a.kill();
    // Round robin starts with the first endpoint: a's.
    const web = await caller([destA.inboundPort()!, destB.inboundPort()!]);
    try {
      const r = await send(web.upstreamPort('api')!, 'POST', 'y'.repeat(300_000), false);
      expect([r.status, r.reason]).to.deep.equal([503, 'LF']);
      expect(b.seen).to.deep.equal([]);
      // The next request skips the ejected endpoint.
      const r2 = await send(web.upstreamPort('api')!, 'POST', 'small', false);
      expect([r2.status, r2.body]).to.deep.equal([200, 'b 5']);
    } finally {
      await web.stop();
      await destA.stop();
      await destB.stop();
      b.server.close();
    }
  });

  it('never resends what an app answered, even a 503 claiming x-trellis-reason: LF', async () => {
    const liar = new App('liar', (res) => {
      res.writeHead(503, { 'x-trellis-reason': 'LF' });
      res.end('not really');
    });
    const b = new App('b');
    const destA = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    const destB = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    await destA.setPlan(plan('api', await liar.start(), 'http'));
    await destB.setPlan(plan('api', await b.start(), 'http'));
    const web = await caller([destA.inboundPort()!, destB.inboundPort()!]);
    try {
      const r = await send(web.upstreamPort('api')!, 'POST', 'once', false);
      expect([r.status, r.reason, r.body]).to.deep.equal([503, undefined, 'not really']);
      expect(liar.seen).to.deep.equal(['POST 4']);
      expect(b.seen).to.deep.equal([]);
    } finally {
      await web.stop();
      await destA.stop();
      await destB.stop();
      liar.server.close();
      b.server.close();
    }
  });

  it('tries each endpoint that proves another identity once, then answers 503 UI, logged', async () => {
    const app = new App('db');
    const dbs = [
      new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false }),
      new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false }),
    ];
    const port = await app.start();
    for (const d of dbs) await d.setPlan(plan('db', port, 'http'));
    const counters = [await counter(dbs[0]!.inboundPort()!), await counter(dbs[1]!.inboundPort()!)];
    const log = recorder();
    // web expects "api" at both endpoints; both prove "db".
    const web = await caller(
      counters.map((c) => c.port),
      log,
    );
    try {
      const r = await send(web.upstreamPort('api')!, 'POST', 'x', false);
      expect([r.status, r.reason]).to.deep.equal([503, 'UI']);
      expect(counters.map((c) => c.count())).to.deep.equal([1, 1]);
      const wrong = log.lines.filter((l) => l.msg === 'upstream endpoint proved another identity');
      expect(wrong.length).to.equal(2);
      expect(String(wrong[0]!.obj.why)).to.contain(spiffeUri('db'));
      // Both ejected: with nothing else left, both are tried again, once each.
      const r2 = await send(web.upstreamPort('api')!, 'GET', '', false);
      expect([r2.status, r2.reason]).to.deep.equal([503, 'UI']);
      expect(counters.map((c) => c.count())).to.deep.equal([2, 2]);
      expect(app.seen).to.deep.equal([]);
    } finally {
      await web.stop();
      for (const d of dbs) await d.stop();
      for (const c of counters) c.close();
      app.server.close();
    }
  });

  it('skips an ejected wrong-identity endpoint for the next requests when a right one exists', async () => {
    const app = new App('api');
    const port = await app.start();
    const wrong = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    const right = new ServiceProxy({ clock: systemClock, log: recorder(), accessLog: false });
    await wrong.setPlan(plan('db', port, 'http'));
    await right.setPlan(plan('api', port, 'http'));
    const w = await counter(wrong.inboundPort()!);
    const web = await caller([w.port, right.inboundPort()!]);
    try {
      for (let i = 0; i < 6; i++) {
        const r = await send(web.upstreamPort('api')!, 'POST', `n${i}`, false);
        expect(r.status).to.equal(200);
      }
      expect(w.count()).to.equal(1);
      expect(app.seen.length).to.equal(6);
    } finally {
      await web.stop();
      await wrong.stop();
      await right.stop();
      w.close();
      app.server.close();
    }
  });
});
