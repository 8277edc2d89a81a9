/**
 * The proxy's own HTTP/2 path between a client, two proxies and an HTTP/2 application (real
 * sockets, real mutual TLS): what happens to linked streams when either end stops early. An
 * answer that completes before the request body does, a client that cancels a streaming
 * answer, an application that resets a stream or closes its connection with GOAWAY: each must
 * end the other side's stream too, leave no stream open on the shared connections (the
 * application allows only a few at once, so a leak shows as refused requests), and keep the
 * connections serving.
 */
import { expect } from 'chai';
import {
  connect as h2connect,
  createServer as createH2Server,
  type ClientHttp2Session,
  type Http2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';

const quiet = { info() {}, warn() {} };
const mesh = testCa();
const HOST = '127.0.0.1';
/** The app's concurrent-stream limit: a stream the proxies leave open soon shows. */
const APP_STREAMS = 8;

function plan(service: string, appPort: number): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: true,
    inbound: {
      bindAddress: HOST,
      bindPort: 0,
      localApp: { address: HOST, port: appPort },
      protocol: 'http2',
    },
    upstreams: [],
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  for (let waited = 0; !ok(); waited += 20) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Result {
  status: number;
  body: string;
  trailers: Record<string, unknown> | undefined;
  error: string | undefined;
}

/** One request; `body` chunks are written one per 20 ms, and `end` says whether it ends. */
function call(
  client: ClientHttp2Session,
  path: string,
  opts: { method?: string; chunks?: number; end?: boolean } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const r = client.request({ ':method': opts.method ?? 'GET', ':path': path });
    const out: Result = { status: 0, body: '', trailers: undefined, error: undefined };
    r.on('response', (h) => (out.status = Number(h[':status'])));
    r.on('trailers', (t) => (out.trailers = t));
    r.on('data', (d: Buffer) => (out.body += d.toString()));
    r.on('error', (e: Error) => (out.error = e.message));
    r.on('close', () => resolve(out));
    const chunks = opts.chunks ?? 0;
    let i = 0;
    const next = (): void => {
      if (r.destroyed || r.closed) return;
      if (i++ < chunks) {
        r.write(`chunk ${i};`);
        setTimeout(next, 20);
      } else if (opts.end !== false) r.end();
    };
    next();
  });
}

describe('proxy: linked HTTP/2 streams when one end stops early (real sockets)', function () {
  this.timeout(60_000);
  let app: Http2Server;
  let dest: ServiceProxy;
  let web: ServiceProxy;
  let client: ClientHttp2Session;
  let port = 0;
  const appSessions = new Set<ServerHttp2Session>();
  /** Streams the app has open now, and how each ended, by path. */
  let open = 0;
  const ended = new Map<string, string>();
  /** The app session each request arrived on, by path. */
  const servedOn = new Map<string, ServerHttp2Session>();

  const handle = (stream: ServerHttp2Stream, headers: Record<string, unknown>): void => {
    const path = String(headers[':path']);
    servedOn.set(path, stream.session as ServerHttp2Session);
    open++;
    stream.once('close', () => {
      open--;
      ended.set(path, stream.rstCode === 0 ? 'closed' : `reset ${stream.rstCode}`);
    });
    stream.on('error', () => undefined);
    if (path.startsWith('/early')) {
      // Answers at once, before the request body is over.
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-done': 'yes' }));
      stream.end('early answer');
      return;
    }
    if (path.startsWith('/stream')) {
      // A long answer, a piece every 20 ms, until the stream goes away.
      stream.respond({ ':status': 200 });
      const t = setInterval(() => {
        if (stream.destroyed || stream.closed) return clearInterval(t);
        stream.write('piece;');
      }, 20);
      stream.once('close', () => clearInterval(t));
      return;
    }
    if (path.startsWith('/reset-before')) return void stream.destroy(new Error('the app failed'));
    if (path.startsWith('/reset-after')) {
      stream.respond({ ':status': 200 });
      stream.write('partial;');
      // destroy(err) sends RST_STREAM alone (close() would end the stream cleanly first).
      setTimeout(() => stream.destroy(new Error('the app failed')), 50);
      return;
    }
    stream.respond({ ':status': 200 });
    stream.end(`ok ${path}`);
  };

  before(async () => {
    app = createH2Server({ settings: { maxConcurrentStreams: APP_STREAMS } });
    app.on('stream', handle);
    app.on('session', (s: ServerHttp2Session) => {
      appSessions.add(s);
      s.once('close', () => appSessions.delete(s));
    });
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const appPort = (app.address() as { port: number }).port;
    dest = new ServiceProxy({ clock: systemClock, log: quiet, accessLog: false });
    await dest.setPlan(plan('api', appPort));
    web = new ServiceProxy({ clock: systemClock, log: quiet, accessLog: false });
    await web.setPlan({
      ...plan('web', 1),
      upstreams: [
        {
          destination: 'api',
          bindAddress: HOST,
          bindPort: 0,
          identity: spiffeUri('api'),
          endpoints: [{ address: HOST, port: dest.inboundPort()!, node: 'n1' }],
          protocol: 'http2',
          balancer: 'round_robin',
        },
      ],
    });
    port = web.upstreamPort('api')!;
    client = h2connect(`http://${HOST}:${port}`);
    client.on('error', () => undefined);
  });

  after(async () => {
    client?.destroy();
    await web?.stop();
    await dest?.stop();
    for (const s of appSessions) s.destroy();
    app?.close();
  });

  it('an answer that completes before the request body: the client gets all of it, and no stream is left open', async () => {
    // Three times the app's stream limit, one after another: a stream left half open on either
    // hop would soon have the app refuse new ones.
    for (let i = 0; i < 3 * APP_STREAMS; i++) {
      const r = await call(client, `/early/${i}`, { method: 'POST', chunks: 2, end: false });
      expect(r.status, `request ${i}`).to.equal(200);
      expect(r.body).to.equal('early answer');
      expect(r.trailers?.['x-done']).to.equal('yes');
    }
    await until('the app streams to close', () => open === 0);
    const r = await call(client, '/after-early');
    expect(r).to.include({ status: 200, body: 'ok /after-early' });
  });

  it('a client that cancels a streaming answer: the app sees its stream reset', async () => {
    const r = client.request({ ':path': '/stream/cancel' });
    r.on('error', () => undefined);
    let got = 0;
    r.on('data', (d: Buffer) => (got += d.length));
    r.end();
    await until('some of the answer', () => got > 20);
    r.close(8); // CANCEL
    await until('the app stream to end', () => ended.has('/stream/cancel'));
    expect(ended.get('/stream/cancel')).to.match(/^reset /);
    await until('the app streams to close', () => open === 0);
  });

  it('an app that resets a stream before answering: the client gets 503 with the reason', async () => {
    const r = client.request({ ':path': '/reset-before' });
    let head: Record<string, unknown> = {};
    r.on('response', (h) => (head = h));
    r.on('error', () => undefined);
    r.resume();
    r.end();
    await new Promise((res) => r.once('close', res));
    expect(head[':status']).to.equal(503);
    expect(head['x-trellis-reason']).to.be.a('string');
  });

  it('an app that resets a stream after answering: the client stream is reset, not ended cleanly', async () => {
    const r = await call(client, '/reset-after');
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('partial;');
    expect(r.error, 'the client saw a reset').to.be.a('string');
  });

  it('an app connection closed with GOAWAY: the next requests go on a new connection', async () => {
    expect((await call(client, '/before-goaway')).status).to.equal(200);
    const old = new Set(appSessions);
    for (const s of old) s.goaway(0);
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(client, `/after-goaway/${i}`)),
    );
    expect(all.map((r) => r.status)).to.deep.equal(Array(20).fill(200));
    const served = [...servedOn.entries()].filter(([p]) => p.startsWith('/after-goaway/'));
    expect(served).to.have.length(20);
    for (const [path, session] of served) expect(old.has(session), path).to.equal(false);
  });

  it('many streams at once past the app limit: each is answered or refused, none is lost', async () => {
    const all = await Promise.all(
      Array.from({ length: 4 * APP_STREAMS }, (_, i) => call(client, `/many/${i}`)),
    );
    for (const r of all) {
      expect(r.error, 'no stream reset').to.equal(undefined);
      expect([200, 503]).to.include(r.status);
    }
    const served = all.filter((r) => r.status === 200).length;
    process.stdout.write(
      `      ${served} of ${all.length} served with the app allowing ${APP_STREAMS}\n`,
    );
    await until('the app streams to close', () => open === 0);
  });
});
