/**
 * Regression rows for bugs the HAProxy differential test found in the HTTP/1.1 splice path,
 * kept here as well so they run without haproxy: a real H1Front and H1Pool on loopback
 * sockets (no TLS), the request headers collected as the proxies collect them, and a raw app
 * that records the bytes it receives and writes scripted bytes back.
 */
import { expect } from 'chai';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { H1Front, type H1Exchange } from '../../../src/proxy/http/h1-front.js';
import { H1Pool } from '../../../src/proxy/http/h1-pool.js';
import { collectRequestHeaders, isHeaderProblem } from '../../../src/proxy/http/request-headers.js';
import { REASON } from '../../../src/proxy/reasons.js';

const HOST = '127.0.0.1';
/** A client that got no answer by then has hit a hang (the idle timeouts here are longer). */
const WAIT_MS = 10_000;

describe('proxy/h1 splice: framing and connection rules (H1Front + H1Pool, real sockets)', function () {
  this.timeout(30_000);
  let app: Server;
  let server: Server;
  let front: H1Front<number>;
  let pool: H1Pool;
  let port = 0;
  /** Everything the app received, per connection. */
  let received: string[] = [];
  /** What the app writes once it has read a request head (the same for every request). */
  let reply = '';
  /** Runs just before the handler sends a request to the pool (a race set up in the same turn). */
  let beforeSend: (() => void) | undefined;
  const appSockets = new Set<Socket>();

  before(async () => {
    app = createServer((s) => {
      const at = received.push('') - 1;
      appSockets.add(s);
      s.once('close', () => appSockets.delete(s));
      s.on('error', () => {});
      let heads = 0;
      s.on('data', (d: Buffer) => {
        received[at] += d.toString('latin1');
        // One reply per request head seen (bodies here hold no CRLFCRLF).
        const n = received[at]!.split('\r\n\r\n').length - 1;
        for (; heads < n; heads++) s.write(reply, 'latin1');
      });
    });
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const appPort = (app.address() as { port: number }).port;
    pool = new H1Pool({
      connect: () => connect({ host: HOST, port: appPort }),
      tls: false,
      idleTimeoutMs: 60_000,
      fallback: () => {
        throw new Error('only HTTP/1.1 exchanges here');
      },
    });
    // As the inbound handler: headers collected (hop-by-hop and Connection-listed ones
    // dropped), sent, the answer relayed or refused with 503.
    const handle = (ex: H1Exchange): void => {
      const c = collectRequestHeaders(ex.rawHeaders, false);
      if (isHeaderProblem(c)) return ex.refuse(400, REASON.badRequest, c.message);
      beforeSend?.();
      pool.send(
        { method: ex.method, path: ex.target, authority: c.host ?? '', headers: c.headers },
        ex,
        (err, res) => {
          if (err || !res) return ex.refuse(503, REASON.localAppReset, 'app failed');
          ex.relay(res);
        },
      );
    };
    front = new H1Front<number>(handle, {
      requireHost: true,
      headersTimeoutMs: 60_000,
      keepAliveMs: 60_000,
      requestTimeoutMs: 300_000,
      idleTimeoutMs: 60_000,
      onRefused: () => {},
    });
    server = createServer({ allowHalfOpen: true }, (s) => front.accept(s, 0));
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    port = (server.address() as { port: number }).port;
  });

  beforeEach(() => {
    received = [];
    beforeSend = undefined;
    // Each row starts with no pooled connection: what one row left must not answer the next.
    for (const s of appSockets) s.destroy();
  });

  after(() => {
    pool?.destroy();
    front?.close();
    server?.close();
    for (const s of appSockets) s.destroy();
    app?.close();
  });

  /**
   * Sends `text` (then half-closes if `fin`) and collects what comes back until `until`
   * matches or the connection closes.
   */
  const talk = (text: string, until: RegExp, fin = false): Promise<string> =>
    new Promise((resolve) => {
      const s = connect({ host: HOST, port, allowHalfOpen: true });
      let got = '';
      const done = (): void => {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      };
      const timer = setTimeout(done, WAIT_MS);
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (until.test(got)) done();
      });
      s.on('error', () => {});
      s.once('close', done);
      s.once('connect', () => (fin ? s.end(text, 'latin1') : s.write(text, 'latin1')));
    });

  it('a client listing Content-Length in Connection: the app still gets the body as a body', async () => {
    reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const inner = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
    const got = await talk(
      `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: ${inner.length}\r\n` +
        `Connection: Content-Length\r\n\r\n${inner}`,
      /\r\n\r\nok/,
    );
    expect(got).to.match(/^HTTP\/1\.1 200 /);
    expect(received).to.have.length(1);
    const bytes = received[0]!;
    const head = bytes.slice(0, bytes.indexOf('\r\n\r\n'));
    expect(head).to.match(/^POST \/a HTTP\/1\.1\r\n/);
    // The framing the proxy read the body with, so the app reads the same body.
    expect(head).to.match(new RegExp(`\r\ncontent-length: ${inner.length}(\r\n|$)`, 'i'));
    expect(bytes.slice(head.length + 4)).to.equal(inner);
  });

  it('an app listing Content-Length in Connection: the client still gets the length', async () => {
    reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Content-Length\r\n\r\nok';
    const got = await talk(
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n',
      /ok[^]*ok/,
    );
    const heads = got.split(/\r\n\r\nok/).filter((h) => h.startsWith('HTTP/1.1'));
    expect(heads, got).to.have.length(2);
    for (const h of heads) expect(h).to.match(/\r\ncontent-length: 2(\r\n|$)/i);
  });

  it('pipelined requests sent before the client half-closes are all answered', async () => {
    reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const got = await talk(
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
      /(ok[^]*){3}/,
      true,
    );
    expect(got.match(/HTTP\/1\.1 200 /g), got).to.have.length(3);
  });

  it('a response head with bare LF line endings is refused at once (503), not waited on', async () => {
    reply = 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok';
    const got = await talk('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', /\r\n\r\n/);
    expect(got).to.match(/^HTTP\/1\.1 503 /);
  });

  it('a 204 reaches the client without Content-Length', async () => {
    reply = 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n';
    const got = await talk('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', /\r\n\r\n/);
    expect(got).to.match(/^HTTP\/1\.1 204 /);
    expect(got).not.to.match(/content-length/i);
  });

  it('a pooled connection the idle sweep just closed is not used: a POST after it reaches the app', async () => {
    reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    // Leaves one connection idle in the pool.
    expect(await talk('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', /ok/)).to.match(/^HTTP\/1\.1 200 /);
    // The sweep closes it in the same turn the POST is sent: its 'close' has not come yet.
    beforeSend = () => void pool.sweepIdle(Number.MAX_SAFE_INTEGER);
    const got = await talk(
      'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody',
      /ok|\r\n\r\n/,
    );
    expect(got, got).to.match(/^HTTP\/1\.1 200 /);
    expect(
      received.some((r) => r.startsWith('POST /2 ') && r.endsWith('body')),
      received.join('|'),
    ).to.equal(true);
  });
});
