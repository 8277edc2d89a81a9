/**
 * HTTP/2 abuse against a proxy's public listener, in raw frames from an authenticated peer:
 * rapid reset (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 family), oversized header
 * lists and stream-limit abuse. Each must end in a refusal or the session closed, with the
 * application seeing a bounded number of requests, and the proxy must keep serving a
 * well-behaved client.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { systemClock } from '../../../src/core/index.js';
import { ServiceProxy, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';

const mesh = testCa();
const quiet = { info() {}, warn() {} };

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 };
const F = { END_STREAM: 1, END_HEADERS: 4 };

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK literal without indexing, new name (lengths < 127). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** GET / with :scheme https and :authority api, from the static table. */
const GET_ROOT = Buffer.concat([Buffer.from([0x82, 0x84, 0x87, 0x01, 0x03]), Buffer.from('api')]);

interface RawSession {
  socket: TLSSocket;
  /** Frame types received, in order, and the first GOAWAY's error code if one came. */
  received: number[];
  goaway: number | undefined;
  closed: Promise<void>;
}

function rawSession(port: number): Promise<RawSession> {
  return new Promise((resolve, reject) => {
    const leaf = mesh.leaf('web');
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: leaf.certChain,
      key: leaf.key,
      ca: [mesh.rootPem],
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    const s: RawSession = {
      socket,
      received: [],
      goaway: undefined,
      closed: new Promise((r) => socket.once('close', () => r())),
    };
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        s.received.push(type);
        if (type === T.GOAWAY) s.goaway ??= buf.readUInt32BE(9 + 4);
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.once('secureConnect', () => {
      expect(socket.alpnProtocol).to.equal('h2');
      socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, Buffer.alloc(0))]));
      resolve(s);
    });
    socket.once('error', reject);
  });
}

/** Writes as fast as the socket takes it; stops quietly once the peer has closed. */
async function blast(s: RawSession, chunks: Iterable<Buffer>): Promise<void> {
  for (const c of chunks) {
    if (s.socket.destroyed || !s.socket.writable) return;
    if (!s.socket.write(c))
      await Promise.race([
        new Promise((r) => s.socket.once('drain', r)),
        s.closed,
        new Promise((r) => setTimeout(r, 2000)),
      ]);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms),
    ),
  ]);
}

describe('proxy: HTTP/2 floods against the public listener (raw frames)', function () {
  this.timeout(60_000);
  let app: Server;
  let appRequests = 0;
  let api: ServiceProxy;
  let port = 0;

  before(async () => {
    app = createServer((_req, res) => {
      appRequests++;
      res.end('ok');
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    api = new ServiceProxy({ clock: systemClock, log: quiet, accessLog: false });
    const plan: ProxyPlan = {
      version: 1,
      service: 'api',
      identity: spiffeUri('api'),
      tls: { ...mesh.leaf('api'), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
      intentions: [],
      defaultAllow: true,
      inbound: {
        bindAddress: '127.0.0.1',
        bindPort: 0,
        localApp: { address: '127.0.0.1', port: (app.address() as { port: number }).port },
        protocol: 'http',
      },
      upstreams: [],
    };
    await api.setPlan(plan);
    port = api.inboundPort()!;
  });

  after(async () => {
    await api.stop();
    app.close();
  });

  /** A well-behaved HTTP/2 client still gets answers. */
  async function stillServes(): Promise<void> {
    const leaf = mesh.leaf('web');
    const session = h2connect(`https://127.0.0.1:${port}`, {
      cert: leaf.certChain,
      key: leaf.key,
      ca: [mesh.rootPem],
      checkServerIdentity: () => undefined,
    });
    try {
      const status = await withTimeout(
        new Promise<number>((resolve, reject) => {
          const r = session.request({ ':path': '/health' });
          r.on('response', (h) => resolve(Number(h[':status'])));
          r.on('error', reject);
          r.end();
        }),
        10_000,
        'a good client answered',
      );
      expect(status).to.equal(200);
    } finally {
      session.destroy();
    }
  }

  it('serves a raw HTTP/2 request (the frame writer is sound)', async () => {
    const before = appRequests;
    const s = await rawSession(port);
    s.socket.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, GET_ROOT));
    await withTimeout(
      (async () => {
        while (!s.received.includes(T.DATA)) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'a response',
    );
    expect(appRequests - before).to.equal(1);
    s.socket.destroy();
  });

  it('ends a rapid-reset flood (HEADERS + RST_STREAM x 20,000) and the app sees a bounded share', async () => {
    const before = appRequests;
    const s = await rawSession(port);
    const N = 20_000;
    function* pairs(): Generator<Buffer> {
      for (let i = 0; i < N; i += 100) {
        const batch: Buffer[] = [];
        for (let j = i; j < i + 100; j++) {
          const id = 2 * j + 1;
          batch.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, GET_ROOT));
          batch.push(frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
        }
        yield Buffer.concat(batch);
      }
    }
    await blast(s, pairs());
    await withTimeout(s.closed, 20_000, 'the session closed');
    expect(s.goaway, 'GOAWAY ENHANCE_YOUR_CALM').to.equal(11);
    const seen = appRequests - before;
    process.stdout.write(
      `      rapid reset: ${N} streams opened and reset, app saw ${seen}, GOAWAY code ${s.goaway}\n`,
    );
    expect(seen).to.be.below(N / 4);
    await stillServes();
  });

  it('ends a CONTINUATION flood that never ends its header block', async () => {
    const before = appRequests;
    const s = await rawSession(port);
    function* flood(): Generator<Buffer> {
      yield frame(T.HEADERS, 0, 1, GET_ROOT);
      for (let i = 0; i < 50_000; i++)
        yield frame(T.CONTINUATION, 0, 1, literal(`x-h${i % 1000}`, 'v'.repeat(60)));
    }
    await blast(s, flood());
    await withTimeout(s.closed, 20_000, 'the session closed');
    expect(appRequests - before).to.equal(0);
    await stillServes();
  });

  it('refuses a header list above the limit without reaching the app', async () => {
    const before = appRequests;
    const s = await rawSession(port);
    const big: Buffer[] = [GET_ROOT];
    for (let i = 0; i < 400; i++) big.push(literal(`x-big-${i}`, 'v'.repeat(100)));
    s.socket.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat(big)));
    await withTimeout(
      (async () => {
        while (
          !s.socket.destroyed &&
          !s.received.includes(T.RST_STREAM) &&
          !s.received.includes(T.GOAWAY) &&
          !s.received.includes(T.HEADERS)
        )
          await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'a refusal',
    );
    expect(appRequests - before).to.equal(0);
    s.socket.destroy();
    await stillServes();
  });

  it('caps concurrent streams: streams past the advertised limit are refused, not queued', async () => {
    const s = await rawSession(port);
    // 1,000 requests whose bodies never end hold their streams open.
    const frames: Buffer[] = [];
    for (let i = 0; i < 1000; i++)
      frames.push(frame(T.HEADERS, F.END_HEADERS, 2 * i + 1, GET_ROOT));
    await blast(s, [Buffer.concat(frames)]);
    await withTimeout(
      (async () => {
        while (
          !s.socket.destroyed &&
          !s.received.includes(T.RST_STREAM) &&
          !s.received.includes(T.GOAWAY)
        )
          await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'streams refused',
    );
    s.socket.destroy();
    await stillServes();
  });
});
