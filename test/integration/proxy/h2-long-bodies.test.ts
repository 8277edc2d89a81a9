/**
 * 100 MB bodies through a Trellis pair on the proxy's own HTTP/2 path: an h2c client -> web's
 * outbound listener -> mTLS h2 -> api's public listener -> an h2c app, uploads and downloads,
 * one at a time and four at once on one connection. Bodies are generated as they are sent and
 * hashed as they pass at both ends: the SHA-256 and byte count at the far end must equal the
 * sender's, and trailers sent after a body must arrive after it.
 *
 * The pair runs in a child process (h1-pair-child.ts with protocol http2); its RSS is sampled
 * from /proc while the bodies flow and must stay within RSS_BOUND of its idle RSS: the proxies
 * forward DATA under HTTP/2 flow control and give a window back only once the bytes left
 * towards the receiver, so a receiver that stops reading (for PAUSE_MS, partway through every
 * body) must stop the sender rather than grow the proxies' memory.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  connect,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type ServerHttp2Stream,
} from 'node:http2';
import { fileURLToPath } from 'node:url';
import { body, rssOf, Tally } from '../../helpers/long-bodies.js';

const HOST = '127.0.0.1';
const SIZE = 100 * 1024 * 1024;
const RSS_BOUND = 64 * 1024 * 1024;
const PAUSE_AT = 16 * 1024 * 1024;
const PAUSE_MS = 1_000;
const CHILD = fileURLToPath(new URL('./h1-pair-child.js', import.meta.url));

/** Writes `seed`'s body of `size` to `w` with backpressure, tallied; then `finish`. */
async function send(
  w: NodeJS.WritableStream & { once(e: 'drain', f: () => void): unknown },
  seed: number,
  size: number,
  tally: Tally,
): Promise<void> {
  for (const b of body(seed, size)) {
    tally.add(b);
    if (!w.write(b)) await new Promise<void>((r) => w.once('drain', r));
  }
}

/** Reads a stream into a tally, pausing once for PAUSE_MS after PAUSE_AT bytes. */
function receive(
  r: NodeJS.ReadableStream & { on(e: 'data', f: (d: Buffer) => void): unknown },
  pauseAt = PAUSE_AT,
): Promise<Tally> {
  return new Promise((resolve, reject) => {
    const t = new Tally();
    r.on('data', (d: Buffer) => {
      const before = t.bytes;
      t.add(d);
      if (before < pauseAt && t.bytes >= pauseAt) {
        r.pause();
        setTimeout(() => r.resume(), PAUSE_MS);
      }
    });
    r.once('end', () => resolve(t));
    r.once('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('proxy: 100 MB bodies through a Trellis pair on the HTTP/2 path', function () {
  this.timeout(240_000);
  let app: Http2Server;
  let child: ChildProcess;
  let client: ClientHttp2Session;
  let idleRss = 0;
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  /** What the app received, by upload id. */
  const uploads = new Map<string, { sha: string; bytes: number; trailer: string | undefined }>();
  /** What the app sent, by download id. */
  const downloads = new Map<string, { sha: string; bytes: number }>();

  const handle = (stream: ServerHttp2Stream, headers: Record<string, unknown>): void => {
    const path = String(headers[':path']);
    const id = /id=(\w+)/.exec(path)?.[1] ?? '-';
    if (headers[':method'] === 'POST') {
      let trailer: string | undefined;
      stream.once('trailers', (t: Record<string, unknown>) => (trailer = String(t['x-sum'])));
      void receive(stream).then((t) => {
        uploads.set(id, { sha: t.digest(), bytes: t.bytes, trailer });
        stream.respond({ ':status': 200 });
        stream.end('stored');
      });
      return;
    }
    if (path.startsWith('/small')) {
      stream.respond({ ':status': 200 });
      return void stream.end('ok');
    }
    const size = Number(/size=(\d+)/.exec(path)?.[1] ?? SIZE);
    const seed = Number(/seed=(\d+)/.exec(path)?.[1] ?? 0);
    stream.respond({ ':status': 200, 'content-length': size }, { waitForTrailers: true });
    const t = new Tally();
    stream.once('wantTrailers', () => stream.sendTrailers({ 'x-sum': t.digest() }));
    void send(stream, seed, size, t).then(() => {
      downloads.set(id, { sha: t.digest(), bytes: t.bytes });
      stream.end();
    });
  };

  before(async () => {
    app = createServer();
    app.on('stream', handle);
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const appPort = (app.address() as { port: number }).port;
    child = spawn(process.execPath, ['--enable-source-maps', CHILD, String(appPort), 'http2'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { port: number }).port);
      });
      child.once('exit', (code) => reject(new Error(`pair exited (${code}) before ready`)));
    });
    client = connect(`http://${HOST}:${port}`);
    client.on('error', () => undefined);
    for (let i = 0; i < 20; i++) await small();
    await sleep(500);
    idleRss = rssOf(child.pid!);
    peakRss = idleRss;
    sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, rssOf(child.pid!));
      } catch {
        // The child is gone; the test that needed it fails on its own.
      }
    }, 20);
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    client?.destroy();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    app?.close();
    console.log(
      `  pair RSS: idle ${(idleRss / 2 ** 20).toFixed(1)} MiB, peak ${(peakRss / 2 ** 20).toFixed(1)} MiB (bound: idle + ${RSS_BOUND / 2 ** 20} MiB)`,
    );
  });

  async function small(): Promise<void> {
    const s = client.request({ ':path': '/small', ':authority': 'api' });
    s.end();
    const t = await receive(s);
    expect(t.bytes).to.equal(2);
  }

  /** Uploads `size` bytes with an x-sum trailer; resolves with what was sent. */
  async function upload(id: string, seed: number, size: number): Promise<Tally> {
    const s = client.request(
      { ':method': 'POST', ':path': `/up?id=${id}`, ':authority': 'api' },
      { waitForTrailers: true },
    );
    const sent = new Tally();
    s.once('wantTrailers', () => s.sendTrailers({ 'x-sum': sent.digest() }));
    let status = 0;
    s.once('response', (h) => (status = Number(h[':status'])));
    const answer = receive(s);
    await send(s, seed, size, sent);
    s.end();
    const t = await answer;
    expect(status).to.equal(200);
    expect(t.bytes).to.equal(6); // "stored"
    return sent;
  }

  /** Downloads `size` bytes; resolves with what arrived and the x-sum trailer. */
  async function download(
    id: string,
    seed: number,
    size: number,
  ): Promise<{ got: Tally; trailer: string | undefined }> {
    const s = client.request({
      ':path': `/down?id=${id}&seed=${seed}&size=${size}`,
      ':authority': 'api',
    });
    s.end();
    let trailer: string | undefined;
    s.once('trailers', (t) => (trailer = String(t['x-sum'])));
    const got = await receive(s);
    return { got, trailer };
  }

  const checkRss = (): void => {
    const grown = peakRss - idleRss;
    expect(grown, `pair RSS grew from ${idleRss} to ${peakRss} bytes`).to.be.below(RSS_BOUND);
  };

  it('100 MB upload with a trailer: the app gets the same SHA-256, then the trailer', async () => {
    const sent = await upload('u1', 1, SIZE);
    const sha = sent.digest();
    expect(uploads.get('u1')).to.deep.equal({ sha, bytes: SIZE, trailer: sha });
    checkRss();
  });

  it('100 MB download with a trailer: the client gets the same SHA-256, then the trailer', async () => {
    const { got, trailer } = await download('d1', 2, SIZE);
    const sha = got.digest();
    expect(got.bytes).to.equal(SIZE);
    expect(downloads.get('d1')).to.deep.equal({ sha, bytes: SIZE });
    expect(trailer).to.equal(sha);
    checkRss();
  });

  it('four 25 MB uploads and four 25 MB downloads at once on one connection', async () => {
    const quarter = SIZE / 4;
    const ups = [0, 1, 2, 3].map((i) => upload(`m${i}`, 10 + i, quarter));
    const downs = [0, 1, 2, 3].map((i) => download(`n${i}`, 20 + i, quarter));
    const sent = await Promise.all(ups);
    const got = await Promise.all(downs);
    sent.forEach((t, i) => {
      const sha = t.digest();
      expect(uploads.get(`m${i}`)).to.deep.equal({ sha, bytes: quarter, trailer: sha });
    });
    got.forEach(({ got: t, trailer }, i) => {
      const sha = t.digest();
      expect(downloads.get(`n${i}`)).to.deep.equal({ sha, bytes: quarter });
      expect(trailer).to.equal(sha);
    });
    checkRss();
  });
});
