/**
 * 100 MB bodies through a Trellis pair on the proxy's own HTTP/1.1 path: client -> web's
 * outbound listener -> mTLS -> api's public listener -> app, uploads and downloads, each with
 * Content-Length and chunked framing. Bodies are produced by a generator as they are sent (the
 * test never holds one in memory) and hashed as they pass at both ends: the SHA-256 and the
 * byte count at the far end must equal the sender's.
 *
 * The pair runs in a child process (h1-pair-child.ts); its RSS is sampled from /proc while the
 * bodies flow and must stay within RSS_BOUND of its RSS when idle (after a warm-up request):
 * the proxies splice bodies with backpressure and must not buffer them. The receiving end stops
 * reading for a second partway through each body, so a proxy that ignored backpressure would
 * have to hold what the sender pushed meanwhile.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  Agent,
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { body, rssOf, Tally } from '../../helpers/long-bodies.js';

const HOST = '127.0.0.1';
const SIZE = 100 * 1024 * 1024;
/** How far the pair's RSS may grow over its idle RSS while 100 MB bodies pass through it. */
const RSS_BOUND = 64 * 1024 * 1024;
/**
 * The far end stops reading for PAUSE_MS once this much has arrived: a proxy without
 * backpressure would buffer what the sender pushes meanwhile, and its RSS would show it.
 */
const PAUSE_AT = 16 * 1024 * 1024;
const PAUSE_MS = 1_000;
const CHILD = fileURLToPath(new URL('./h1-pair-child.js', import.meta.url));

/** A generator's bytes as a Readable, tallied on the way out. */
function sending(seed: number, tally: Tally): Readable {
  const gen = body(seed, SIZE);
  return Readable.from(
    (function* () {
      for (const b of gen) {
        tally.add(b);
        yield b;
      }
    })(),
    { objectMode: false },
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('proxy: 100 MB bodies through a Trellis pair on the HTTP/1.1 path', function () {
  this.timeout(180_000);
  let app: Server;
  let child: ChildProcess;
  let port = 0;
  let idleRss = 0;
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  /** What the app saw of the last upload, and sent of the last download. */
  let uploaded: { sha: string; bytes: number; framing: string } | undefined;
  let downloaded: { sha: string; bytes: number } | undefined;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'POST') {
      const t = new Tally();
      req.on('data', (d: Buffer) => {
        const before = t.bytes;
        t.add(d);
        if (before < PAUSE_AT && t.bytes >= PAUSE_AT) {
          req.pause();
          setTimeout(() => req.resume(), PAUSE_MS);
        }
      });
      req.on('end', () => {
        uploaded = {
          sha: t.digest(),
          bytes: t.bytes,
          framing: req.headers['transfer-encoding'] ?? `cl:${req.headers['content-length']}`,
        };
        res.end('stored');
      });
      return;
    }
    const seed = Number(/seed=(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    if (req.url?.startsWith('/small')) return void res.end('ok');
    if (req.url?.startsWith('/cl')) res.setHeader('content-length', SIZE);
    const t = new Tally();
    pipeline(sending(seed, t), res).then(
      () => (downloaded = { sha: t.digest(), bytes: t.bytes }),
      () => {},
    );
  };

  before(async () => {
    app = createServer(handle);
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const appPort = (app.address() as { port: number }).port;
    child = spawn(process.execPath, ['--enable-source-maps', CHILD, String(appPort)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
      });
      child.once('exit', (code) => reject(new Error(`pair exited (${code}) before ready`)));
    });
    // Warm up (connections, TLS session, JIT), then take the idle RSS.
    for (let i = 0; i < 20; i++) await get('/small');
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
    agent.destroy();
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

  function get(path: string, onBody?: (d: Buffer) => void): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const rq = request({ host: HOST, port, path, agent, headers: { host: 'api' } }, (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => {
          onBody?.(d);
          if (bytes < PAUSE_AT && bytes + d.length >= PAUSE_AT) {
            res.pause();
            setTimeout(() => res.resume(), PAUSE_MS);
          }
          bytes += d.length;
        });
        res.on('end', () => resolve(res));
        res.on('error', reject);
      });
      rq.on('error', reject);
      rq.end();
    });
  }

  async function upload(seed: number, chunked: boolean): Promise<{ sha: string; bytes: number }> {
    const sent = new Tally();
    const answer = await new Promise<string>((resolve, reject) => {
      const rq = request(
        {
          host: HOST,
          port,
          path: '/upload',
          method: 'POST',
          agent,
          headers: chunked ? { host: 'api' } : { host: 'api', 'content-length': SIZE },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        },
      );
      rq.on('error', reject);
      sending(seed, sent).pipe(rq);
    });
    expect(answer).to.equal('200 stored');
    return { sha: sent.digest(), bytes: sent.bytes };
  }

  const checkRss = (): void => {
    const grown = peakRss - idleRss;
    expect(grown, `pair RSS grew from ${idleRss} to ${peakRss} bytes`).to.be.below(RSS_BOUND);
  };

  for (const chunked of [false, true]) {
    const framing = chunked ? 'chunked' : 'Content-Length';
    it(`100 MB upload with ${framing}: the app gets the same SHA-256`, async () => {
      uploaded = undefined;
      const sent = await upload(chunked ? 2 : 1, chunked);
      expect(sent.bytes).to.equal(SIZE);
      expect(uploaded).to.deep.equal({
        sha: sent.sha,
        bytes: SIZE,
        framing: chunked ? 'chunked' : `cl:${SIZE}`,
      });
      checkRss();
    });

    it(`100 MB download with ${framing}: the client gets the same SHA-256`, async () => {
      downloaded = undefined;
      const got = new Tally();
      const res = await get(`/${chunked ? 'chunked' : 'cl'}?seed=${chunked ? 4 : 3}`, (d) =>
        got.add(d),
      );
      expect(res.statusCode).to.equal(200);
      if (chunked) expect(res.headers['transfer-encoding']).to.equal('chunked');
      else expect(res.headers['content-length']).to.equal(String(SIZE));
      // The app's pipeline resolves once its last write is flushed: wait for it.
      for (let i = 0; i < 100 && downloaded === undefined; i++) await sleep(20);
      expect({ sha: got.digest(), bytes: got.bytes }).to.deep.equal(downloaded);
      expect(got.bytes).to.equal(SIZE);
      checkRss();
    });
  }
});
