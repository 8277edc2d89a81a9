/**
 * Fuzzing the proxy's own HTTP/1.1 code: a seeded PRNG mutates a corpus of valid and tricky
 * requests and responses (byte flips; insertions of CR, LF, NUL, SP, HTAB, ':', ',' and digits;
 * deletions, truncation, duplicated slices, Content-Length and chunk-size edits, splices of two
 * messages) and feeds each result to
 *
 *   - parseRequestHead / parseResponseHead and BodyFramer, message after message as a
 *     connection would (pipelining): no exception, everything accepted is well-formed (tokens,
 *     no control characters, one framing), and the framer reaches the same end and decision
 *     with the bytes in one piece as in random pieces;
 *   - for fewer iterations, a real H1Front on a loopback socket with a stub handler that
 *     refuses, answers after the body, or answers before it: every connection ends (the client
 *     half-closes after writing; the front must close its side), nothing escapes.
 *
 * The heap after a GC must not grow past a stated bound over the run. Deterministic: the seed
 * is fixed (H1_FUZZ_SEED overrides it) and printed with the input on any failure.
 */
import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BodyFramer, BodyKind } from '../../../src/proxy/http/h1-body.js';
import { H1Front, type H1Exchange } from '../../../src/proxy/http/h1-front.js';
import { H1Pool } from '../../../src/proxy/http/h1-pool.js';
import {
  NO_LENGTH,
  isHeadError,
  parseRequestHead,
  type H1Framing,
} from '../../../src/proxy/http/h1-parse.js';
import { parseResponseHead } from '../../../src/proxy/http/h1-response-head.js';
import { REASON } from '../../../src/proxy/reasons.js';

const SEED = Number(process.env.H1_FUZZ_SEED ?? 0x7e11150);
const PURE_ITERATIONS = 20_000;
const SOCKET_ITERATIONS = 1_500;
const SOCKET_CONCURRENCY = 8;
const POOL_ITERATIONS = 800;
/** A connection the front has not closed by then is a hang (generous: 2 shared cores). */
const HANG_MS = 15_000;
/** Heap growth (after GC) allowed over a whole run: the corpus is small, nothing may pile up. */
const HEAP_BOUND = 24 * 1024 * 1024;

/** mulberry32: a small, deterministic PRNG (not for anything but tests). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REQUESTS: string[] = [
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /x?y=1 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n',
  'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
  'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nX-Trailer: t\r\n\r\n',
  'PUT /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
  'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi',
  'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nhello',
  'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n',
  'GET / HTTP/1.1\nHost: a\n\n',
  'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '1\r\nx\r\n'.repeat(50) +
    '0\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET http://a/ HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
];

const RESPONSES: string[] = [
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
  'HTTP/1.0 200 OK\r\n\r\nuntil close',
  'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nno!',
  'HTTP/1.1 200\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
];

const INSERTS = ['\r', '\n', '\0', ' ', '\t', ':', ',', '0', '9', 'f', '\r\n', '\r\n\r\n', '\xff'];

/** One mutation of `s` (latin1), chosen by `r`. */
function mutate(s: string, r: () => number, corpus: string[]): string {
  const at = Math.floor(r() * (s.length + 1));
  switch (Math.floor(r() * 9)) {
    case 0: {
      if (s.length === 0) return s;
      const i = Math.min(at, s.length - 1);
      const c = s.charCodeAt(i) ^ (1 << Math.floor(r() * 8));
      return s.slice(0, i) + String.fromCharCode(c) + s.slice(i + 1);
    }
    case 1:
      return s.slice(0, at) + INSERTS[Math.floor(r() * INSERTS.length)]! + s.slice(at);
    case 2:
      return s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 4));
    case 3:
      return s.slice(0, at);
    case 4: {
      const len = Math.floor(r() * 40);
      return s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
    }
    case 5:
      // Content-Length edits: another number, a huge one, a list, a sign.
      return s.replace(/(content-length:[ \t]*)([^\r\n]*)/i, (_, p: string) => {
        const v = [
          '0',
          '1',
          String(Math.floor(r() * 100)),
          '99999999999999999',
          '3, 3',
          '-1',
          '+2',
        ];
        return p + v[Math.floor(r() * v.length)]!;
      });
    case 6: {
      // Chunk-size edits: another size, an overflowing one, leading zeros, an extension.
      const lines = [...s.matchAll(/\r\n([0-9a-fA-F]+)(;[^\r\n]*)?\r\n/g)];
      if (lines.length === 0) return s;
      const m = lines[Math.floor(r() * lines.length)]!;
      const sizes = [
        '0',
        '1',
        'ff',
        '10000000000000000',
        '000000000000001',
        '2 ',
        ' 2',
        '-1',
        '2;x',
      ];
      const start = m.index + 2;
      return (
        s.slice(0, start) + sizes[Math.floor(r() * sizes.length)]! + s.slice(start + m[1]!.length)
      );
    }
    case 7:
      // Two messages back to back (pipelining), possibly cut.
      return s + corpus[Math.floor(r() * corpus.length)]!.slice(0, Math.floor(r() * 200));
    default: {
      // Duplicate one line.
      const lines = s.split('\r\n');
      const i = Math.floor(r() * lines.length);
      lines.splice(i, 0, lines[i]!);
      return lines.join('\r\n');
    }
  }
}

function mutated(r: () => number, corpus: string[]): string {
  let s = corpus[Math.floor(r() * corpus.length)]!;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) s = mutate(s, r, corpus);
  return s;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** What an accepted head must look like, whatever bytes produced it. */
function checkAccepted(f: H1Framing & { rawHeaders: string[] }): void {
  expect(f.rawHeaders.length % 2).to.equal(0);
  for (let i = 0; i < f.rawHeaders.length; i += 2) {
    expect(f.rawHeaders[i]).to.match(TOKEN);
    expect(f.rawHeaders[i + 1]).to.match(VALUE);
  }
  expect(f.chunked && f.contentLength !== NO_LENGTH, 'both framings').to.equal(false);
  expect(Number.isSafeInteger(f.contentLength) && f.contentLength >= NO_LENGTH).to.equal(true);
}

interface FramerOutcome {
  end: number;
  done: boolean;
  data: number;
}

/** Feeds buf[from..] to a framer, in one piece or in the random pieces `cuts` gives. */
function frame(
  kind: BodyKind,
  length: number,
  cap: boolean,
  buf: Buffer,
  from: number,
  cuts: number[] | undefined,
): FramerOutcome {
  const f = new BodyFramer();
  f.start(kind, length, cap);
  if (f.done) return { end: from, done: true, data: 0 };
  if (cuts === undefined) {
    const end = f.feed(buf, from);
    return { end, done: f.done, data: f.data };
  }
  let i = from;
  for (const cut of [...cuts, buf.length]) {
    if (cut <= i) continue;
    const piece = buf.subarray(i, cut);
    const end = f.feed(piece, 0);
    if (end < 0) return { end: -1, done: f.done, data: f.data };
    i += end;
    if (end < piece.length || f.done) break;
  }
  return { end: i, done: f.done, data: f.data };
}

/**
 * Parses and frames the messages in `bytes` one after the other, as a connection would:
 * how many heads were accepted.
 */
function runPure(bytes: Buffer, request: boolean, r: () => number): number {
  let at = 0;
  let n = 0;
  for (; n < 8 && at < bytes.length; n++) {
    const end = bytes.indexOf('\r\n\r\n', at);
    const head = bytes.toString('latin1', at, end < 0 ? bytes.length : end);
    let kind: BodyKind;
    let length = 0;
    if (request) {
      const h = parseRequestHead(head);
      if (isHeadError(h)) {
        expect([400, 431]).to.include(h.status);
        return n;
      }
      checkAccepted(h);
      expect(h.method).to.match(TOKEN);
      expect(h.target).to.match(/^[\x21-\x7e]+$/);
      kind = h.chunked ? BodyKind.Chunked : h.contentLength > 0 ? BodyKind.Length : BodyKind.None;
      length = h.contentLength;
    } else {
      const h = parseResponseHead(head);
      if (isHeadError(h)) {
        expect([400, 431]).to.include(h.status);
        return n;
      }
      checkAccepted(h);
      expect(h.status).to.be.within(100, 999);
      kind =
        h.status < 200 || h.status === 204 || h.status === 304
          ? BodyKind.None
          : h.chunked
            ? BodyKind.Chunked
            : h.contentLength !== NO_LENGTH
              ? BodyKind.Length
              : BodyKind.UntilClose;
      length = h.contentLength;
    }
    if (end < 0) return n + 1;
    const from = end + 4;
    const whole = frame(kind, length, request, bytes, from, undefined);
    const cuts: number[] = [];
    for (let i = from; i < bytes.length; i += 1 + Math.floor(r() * 8)) cuts.push(i);
    const pieces = frame(kind, length, request, bytes, from, cuts);
    expect(pieces, 'the same framing in one piece and in pieces').to.deep.equal(whole);
    if (whole.end < 0 || !whole.done) return n + 1;
    expect(whole.end).to.be.within(from, bytes.length);
    at = whole.end;
  }
  return n;
}

function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const printable = (s: string): string => JSON.stringify(s.length > 400 ? s.slice(0, 400) : s);

/** Writes `bytes` to `port` in pieces, half-closes, and waits for the peer to close. */
function exchange(port: number, bytes: Buffer, cuts: number[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      const text = printable(Buffer.concat(got).toString('latin1'));
      reject(new Error(`not closed within ${HANG_MS} ms; got ${text}`));
    }, HANG_MS);
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got).toString('latin1'));
    });
    s.once('end', () => s.end());
    s.once('connect', () => {
      let i = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut > i) s.write(bytes.subarray(i, cut));
        i = Math.max(i, cut);
      }
      s.end();
    });
  });
}

/** Random cut points for writing `s` in pieces. */
function cutsFor(s: string, r: () => number): number[] {
  const cuts: number[] = [];
  for (let i = 0; i < s.length; i += 1 + Math.floor(r() * 64)) cuts.push(i);
  return cuts;
}

async function connectionsOf(server: Server): Promise<number> {
  // Closed sockets leave the count a moment after their 'close': wait for it to settle.
  let n = 0;
  for (let i = 0; i < 100; i++) {
    n = await new Promise<number>((res) => server.getConnections((_, c) => res(c)));
    if (n === 0) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  return n;
}

describe(`proxy/h1 fuzz (seed ${SEED}; H1_FUZZ_SEED=n to change)`, function () {
  this.timeout(120_000);

  it(`parser and framer: ${PURE_ITERATIONS} mutated messages, no exception, same framing however split`, () => {
    const r = prng(SEED);
    const base = heapAfterGc();
    let accepted = 0;
    for (let it = 0; it < PURE_ITERATIONS; it++) {
      const request = r() < 0.6;
      const s = mutated(r, request ? REQUESTS : RESPONSES);
      const rr = prng(SEED ^ it);
      try {
        if (runPure(Buffer.from(s, 'latin1'), request, rr) > 0) accepted++;
      } catch (e) {
        throw new Error(
          `seed ${SEED} iteration ${it} (${request ? 'request' : 'response'}) ${printable(s)}: ${(e as Error).message}`,
        );
      }
    }
    const grown = heapAfterGc() - base;
    // The mutations must leave both outcomes common, or the fuzzing tests nothing.
    expect(accepted, 'accepted heads').to.be.within(PURE_ITERATIONS * 0.1, PURE_ITERATIONS * 0.9);
    expect(grown, `heap grew by ${grown} bytes`).to.be.below(HEAP_BOUND);
  });

  describe('a real H1Front on a loopback socket', () => {
    let server: Server;
    let front: H1Front<number>;
    let port = 0;
    let handled = 0;
    let refusedByFront = 0;

    /** The stub handler: what it does depends only on the request, so a run is repeatable. */
    const handle = (ex: H1Exchange): void => {
      handled++;
      expect(ex.method).to.match(TOKEN);
      expect(ex.target.startsWith('/') || ex.target === '*').to.equal(true);
      const answer = (): void => {
        if (ex.over) return;
        ex.writeHead(
          `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${ex.closeAfter ? 'connection: close\r\n' : ''}\r\n`,
        );
        ex.writeOut(Buffer.from('ok'), undefined);
        ex.complete(true);
      };
      switch (ex.target.length % 3) {
        case 0:
          return ex.refuse(403, REASON.unauthorized, 'no');
        case 1:
          // Takes the whole body, then answers.
          return ex.bodyTo({ write: () => true, end: answer, onDrain: () => {} });
        default:
          // Answers before reading the body (an early response).
          return answer();
      }
    };

    before(async () => {
      front = new H1Front<number>(handle, {
        requireHost: true,
        headersTimeoutMs: 10_000,
        keepAliveMs: 10_000,
        requestTimeoutMs: 300_000,
        idleTimeoutMs: 30_000,
        onRefused: () => void refusedByFront++,
      });
      server = createServer((s) => front.accept(s, 0));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
      port = (server.address() as { port: number }).port;
    });
    after(() => {
      front?.close();
      server?.close();
    });

    it(`${SOCKET_ITERATIONS} mutated requests: every connection ends, answers are well-formed, the heap stays bounded`, async () => {
      const r = prng(SEED + 1);
      const inputs: { s: string; cuts: number[] }[] = [];
      for (let it = 0; it < SOCKET_ITERATIONS; it++) {
        const s = mutated(r, REQUESTS);
        inputs.push({ s, cuts: cutsFor(s, r) });
      }
      const run = async (from: number, to: number): Promise<void> => {
        for (let it = from; it < to; it += SOCKET_CONCURRENCY) {
          await Promise.all(
            inputs.slice(it, Math.min(it + SOCKET_CONCURRENCY, to)).map(async ({ s, cuts }, k) => {
              try {
                const got = await exchange(port, Buffer.from(s, 'latin1'), cuts);
                // Whatever came back is a sequence of HTTP/1.1 responses from the front or the stub.
                if (got.length > 0) expect(got).to.match(/^HTTP\/1\.1 (200|400|403|408|431) /);
              } catch (e) {
                throw new Error(
                  `seed ${SEED + 1} iteration ${it + k} ${printable(s)}: ${(e as Error).message}`,
                );
              }
            }),
          );
        }
      };
      // A first tenth warms up (JIT, socket buffers); the heap is measured over the rest.
      const warm = Math.floor(SOCKET_ITERATIONS / 10);
      await run(0, warm);
      const base = heapAfterGc();
      await run(warm, SOCKET_ITERATIONS);
      // Every connection closed, none leaked.
      expect(await connectionsOf(server), 'connections still open on the server').to.equal(0);
      const grown = heapAfterGc() - base;
      expect(grown, `heap grew by ${grown} bytes`).to.be.below(HEAP_BOUND);
      expect(handled, 'requests the stub handled').to.be.above(SOCKET_ITERATIONS / 10);
      expect(refusedByFront, 'requests the front refused').to.be.above(SOCKET_ITERATIONS / 10);
    });
  });
  describe('a real H1Front and H1Pool in front of an app answering mutated responses', () => {
    let app: Server;
    let server: Server;
    let front: H1Front<number>;
    let pool: H1Pool;
    let port = 0;
    /** The response the app writes for request /<n>. */
    const answers: string[] = [];

    before(async () => {
      // The app reads a request head, writes the scripted bytes and closes: whatever those
      // bytes are, the exchange has an end.
      app = createServer({ allowHalfOpen: true }, (s) => {
        let head = '';
        s.on('error', () => {});
        s.on('data', (d: Buffer) => {
          head += d.toString('latin1');
          const m = /^GET \/(\d+) /.exec(head);
          if (!head.includes('\r\n\r\n') || !m) return;
          s.end(answers[Number(m[1])] ?? '', 'latin1');
        });
      });
      await new Promise<void>((res) => app.listen(0, '127.0.0.1', () => res()));
      const appPort = (app.address() as { port: number }).port;
      pool = new H1Pool({
        connect: () => connect({ host: '127.0.0.1', port: appPort }),
        tls: false,
        idleTimeoutMs: 5_000,
        fallback: () => {
          throw new Error('only HTTP/1.1 exchanges here');
        },
      });
      // What the inbound handler does: send, then relay the answer or refuse with 503.
      const handle = (ex: H1Exchange): void =>
        pool.send(
          { method: ex.method, path: ex.target, authority: 'app', headers: {} },
          ex,
          (err, res) => {
            if (err || !res) return ex.refuse(503, REASON.localAppReset, 'app failed');
            ex.relay(res);
          },
        );
      front = new H1Front<number>(handle, {
        requireHost: true,
        headersTimeoutMs: 10_000,
        keepAliveMs: 10_000,
        requestTimeoutMs: 300_000,
        idleTimeoutMs: 30_000,
        onRefused: () => {},
      });
      server = createServer({ allowHalfOpen: true }, (sock) => front.accept(sock, 0));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
      port = (server.address() as { port: number }).port;
    });
    after(() => {
      pool?.destroy();
      front?.close();
      server?.close();
      app?.close();
    });

    it(`${POOL_ITERATIONS} mutated responses: every exchange ends, nothing stays active, the heap stays bounded`, async () => {
      const r = prng(SEED + 2);
      for (let it = 0; it < POOL_ITERATIONS; it++) answers.push(mutated(r, RESPONSES));
      const run = async (from: number, to: number): Promise<void> => {
        for (let it = from; it < to; it += SOCKET_CONCURRENCY) {
          const batch: Promise<void>[] = [];
          for (let k = it; k < Math.min(it + SOCKET_CONCURRENCY, to); k++) {
            // Two pipelined requests: the second must wait for the first's answer, whatever it was.
            const req = `GET /${k} HTTP/1.1\r\nHost: a\r\n\r\nGET /${k} HTTP/1.1\r\nHost: a\r\n\r\n`;
            batch.push(
              exchange(port, Buffer.from(req, 'latin1'), cutsFor(req, r)).then(
                (got) => {
                  if (got.length > 0) expect(got).to.match(/^HTTP\/1\.1 \d{3} /);
                },
                (e: Error) => {
                  throw new Error(
                    `seed ${SEED + 2} iteration ${k} ${printable(answers[k]!)}: ${e.message}`,
                  );
                },
              ),
            );
          }
          await Promise.all(batch);
        }
      };
      const warm = Math.floor(POOL_ITERATIONS / 10);
      await run(0, warm);
      const base = heapAfterGc();
      await run(warm, POOL_ITERATIONS);
      expect(await connectionsOf(server), 'client connections still open').to.equal(0);
      expect(await connectionsOf(app), 'app connections still open').to.equal(0);
      expect(pool.active, 'requests the pool still counts as active').to.equal(0);
      const grown = heapAfterGc() - base;
      expect(grown, `heap grew by ${grown} bytes`).to.be.below(HEAP_BOUND);
    });
  });
});
