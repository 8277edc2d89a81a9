/**
 * The keep-alive race between Trellis proxies, on real loopback sockets (no TLS): a proxy that
 * closes a connection the other side is just sending a request on.
 *
 *   1. A draining front answers a connection that has not sent its first request yet (it was
 *      opened for one) instead of closing it under that request; an idle kept-alive one is
 *      closed at once, as before.
 *   2. A pool whose peer is a Trellis proxy resends a POST with a body that met a close with
 *      no answer on a reused connection (that peer had not read it); a pool to an app does not.
 */
import { expect } from 'chai';
import { connect, createServer, type Socket } from 'node:net';
import { H1Front, type H1Exchange } from '../../../src/proxy/http/h1-front.js';
import { H1Pool } from '../../../src/proxy/http/h1-pool.js';
import { collectRequestHeaders, isHeaderProblem } from '../../../src/proxy/http/request-headers.js';
import { REASON } from '../../../src/proxy/reasons.js';

const HOST = '127.0.0.1';
const WAIT_MS = 10_000;

interface Pair {
  port: number;
  front: H1Front<number>;
  /** Request texts the app read, per app connection. */
  received: string[];
  close(): void;
  /** Resolves with the next client connection the front takes. */
  nextAccepted(): Promise<void>;
}

/**
 * client -> H1Front -> H1Pool -> app. The app answers each request head with `ok`, except
 * that with `dropSecond` it closes a connection, unanswered, on its second request.
 */
async function pair(peerIsTrellis: boolean, dropSecond: boolean): Promise<Pair> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const app = createServer((s) => {
    const at = received.push('') - 1;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
    let heads = 0;
    s.on('data', (d: Buffer) => {
      received[at] += d.toString('latin1');
      const n = received[at]!.split('\r\n\r\n').length - 1;
      for (; heads < n; heads++) {
        if (dropSecond && heads === 1) return void s.destroy();
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((r) => app.listen(0, HOST, () => r()));
  const appPort = (app.address() as { port: number }).port;
  const pool = new H1Pool({
    connect: () => connect({ host: HOST, port: appPort }),
    tls: false,
    idleTimeoutMs: 60_000,
    peerIsTrellis,
    fallback: () => {
      throw new Error('only HTTP/1.1 exchanges here');
    },
  });
  const handle = (ex: H1Exchange): void => {
    const c = collectRequestHeaders(ex.rawHeaders, false);
    if (isHeaderProblem(c)) return ex.refuse(400, REASON.badRequest, c.message);
    pool.send(
      { method: ex.method, path: ex.target, authority: c.host ?? '', headers: c.headers },
      ex,
      (err, res) => {
        if (err || !res) return ex.refuse(503, REASON.upstreamConnectFailure, 'app failed');
        ex.relay(res);
      },
    );
  };
  const front = new H1Front<number>(handle, {
    requireHost: true,
    headersTimeoutMs: 60_000,
    keepAliveMs: 60_000,
    requestTimeoutMs: 300_000,
    idleTimeoutMs: 60_000,
    onRefused: () => {},
  });
  let accepted: (() => void) | undefined;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    front.accept(s, 0);
    accepted?.();
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return {
    port: (server.address() as { port: number }).port,
    front,
    received,
    nextAccepted: () => new Promise<void>((r) => (accepted = r)),
    close: () => {
      pool.destroy();
      front.close();
      server.close();
      for (const s of sockets) s.destroy();
      app.close();
    },
  };
}

/** A client connection: `send` writes and resolves with what came back once `until` matched. */
function client(port: number): {
  sock: Socket;
  send(text: string, until: RegExp): Promise<string>;
  closed: Promise<string>;
} {
  const sock = connect({ host: HOST, port });
  sock.on('error', () => {});
  let got = '';
  let waiting: { until: RegExp; resolve: (s: string) => void } | undefined;
  const check = (): void => {
    if (waiting && waiting.until.test(got)) {
      const w = waiting;
      waiting = undefined;
      const out = got;
      got = '';
      w.resolve(out);
    }
  };
  sock.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    check();
  });
  const closed = new Promise<string>((resolve) =>
    sock.once('close', () => {
      if (waiting) waiting.resolve(got);
      resolve(got);
    }),
  );
  return {
    sock,
    closed,
    send: (text, until) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(`(no answer in ${WAIT_MS} ms) ${got}`), WAIT_MS);
        waiting = {
          until,
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
        };
        sock.write(text, 'latin1');
      }),
  };
}

const post = (path: string, body: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

describe('proxy/h1: the keep-alive race between Trellis proxies (H1Front + H1Pool, real sockets)', function () {
  this.timeout(30_000);
  const open: Pair[] = [];
  afterEach(() => {
    for (const p of open.splice(0)) p.close();
  });

  it('a draining front answers a connection whose first request had not come yet, then closes it', async () => {
    const p = await pair(false, false);
    open.push(p);
    const accepted = p.nextAccepted();
    const c = client(p.port);
    await accepted;
    p.front.drain();
    const got = await c.send('GET /late HTTP/1.1\r\nHost: a\r\n\r\n', /\r\n\r\nok/);
    expect(got).to.match(/^HTTP\/1\.1 200 /);
    expect(got.toLowerCase()).to.include('\r\nconnection: close\r\n');
    expect(await c.closed).to.equal('');
  });

  it('a draining front closes a kept-alive connection that is idle between requests at once', async () => {
    const p = await pair(false, false);
    open.push(p);
    const c = client(p.port);
    expect(await c.send('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', /\r\n\r\nok/)).to.match(/ 200 /);
    p.front.drain();
    expect(await c.closed).to.equal('');
  });

  it('a pool to a Trellis peer resends a POST with a body that met a close on a reused connection', async () => {
    const p = await pair(true, true);
    open.push(p);
    const c = client(p.port);
    expect(await c.send(post('/1', 'one'), /\r\n\r\nok/)).to.match(/^HTTP\/1\.1 200 /);
    const got = await c.send(post('/2', 'two'), /\r\n\r\nok/);
    expect(got).to.match(/^HTTP\/1\.1 200 /);
    // First connection: /1 answered, /2 read and dropped; the second carried /2 again, whole.
    expect(p.received).to.have.length(2);
    expect(p.received[0]).to.match(/^POST \/1 [^]*\r\n\r\nonePOST \/2 [^]*\r\n\r\ntwo$/);
    expect(p.received[1]).to.match(/^POST \/2 [^]*\r\n\r\ntwo$/);
  });

  it('a pool to an app does not resend a POST with a body: 503, nothing sent twice', async () => {
    const p = await pair(false, true);
    open.push(p);
    const c = client(p.port);
    expect(await c.send(post('/1', 'one'), /\r\n\r\nok/)).to.match(/^HTTP\/1\.1 200 /);
    const got = await c.send(post('/2', 'two'), /\r\n\r\n/);
    expect(got).to.match(/^HTTP\/1\.1 503 /);
    expect(p.received).to.have.length(1);
  });
});
