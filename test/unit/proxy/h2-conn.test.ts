/**
 * H2Conn, the proxy's own HTTP/2 connection, driven over a real loopback TCP connection: the
 * test writes raw frames on one end and parses what comes back; the H2Conn is on the other end.
 * Server role: preface and SETTINGS, header blocks across frames, the field and request rules,
 * content-length, flow control, the limits against hostile peers, trailers and random input.
 * Client role: the preface, GOAWAY, the peer's windows and the response head rules.
 */
import { expect } from 'chai';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  CLIENT_PREFACE,
  CONNECTION_WINDOW,
  FRAME,
  H2_CODE,
  H2Conn,
  type H2ConnOptions,
  H2Stream,
  MAX_CONCURRENT_STREAMS,
  STREAM_WINDOW,
  type StreamHandler,
} from '../../../src/proxy/http/h2-conn.js';
import { encodeHeaderBlock } from '../../../src/proxy/http/hpack-encoder.js';
import { HpackDecoder } from '../../../src/proxy/http/hpack.js';
import { rng } from '../../helpers/rng.js';

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

// ---- frames and header blocks, written by hand ----

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
function settings(pairs: [number, number][]): Buffer {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}
const windowUpdate = (stream: number, n: number): Buffer =>
  frame(FRAME.WINDOW_UPDATE, 0, stream, u32(n));
const rst = (stream: number, code: number): Buffer => frame(FRAME.RST_STREAM, 0, stream, u32(code));
function goaway(last: number, code: number): Buffer {
  return frame(FRAME.GOAWAY, 0, 0, Buffer.concat([u32(last), u32(code)]));
}
const headers = (stream: number, block: Buffer, flags = END_HEADERS): Buffer =>
  frame(FRAME.HEADERS, flags, stream, block);
/** A header block as HEADERS and as many CONTINUATIONs as 16 KiB frames need. */
function headerFrames(stream: number, b: Buffer, flags = END_HEADERS): Buffer {
  const max = 16_384;
  if (b.length <= max) return headers(stream, b, flags);
  const out = [headers(stream, b.subarray(0, max), flags & ~END_HEADERS)];
  for (let at = max; at < b.length; at += max)
    out.push(
      frame(
        FRAME.CONTINUATION,
        at + max >= b.length ? END_HEADERS : 0,
        stream,
        b.subarray(at, at + max),
      ),
    );
  return Buffer.concat(out);
}
const data = (stream: number, payload: Buffer, flags = 0): Buffer =>
  frame(FRAME.DATA, flags, stream, payload);

/** An HPACK integer with an N-bit prefix (RFC 7541 5.1). */
function hpackInt(n: number, bits: number, mask: number): number[] {
  const max = (1 << bits) - 1;
  if (n < max) return [mask | n];
  const out = [mask | max];
  n -= max;
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const hpackString = (s: string): Buffer =>
  Buffer.concat([Buffer.from(hpackInt(s.length, 7, 0)), Buffer.from(s, 'latin1')]);
/** A literal with incremental indexing and a new name: it enters the dynamic table. */
const indexedLiteral = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
/** Index 62: the newest dynamic table entry. */
const NEWEST_ENTRY = Buffer.from([0x80 | 62]);

const REQUEST = [':method', 'GET', ':scheme', 'http', ':path', '/x', ':authority', 'svc'];
const block = (...fields: string[]): Buffer => encodeHeaderBlock(fields);
const requestBlock = (...extra: string[]): Buffer => block(...REQUEST, ...extra);

// ---- the test's end of the connection ----

/** The raw end: writes bytes, parses the frames it receives, waits for the ones it wants. */
class Peer {
  readonly frames: Frame[] = [];
  readonly #taken = new Set<Frame>();
  #pending = Buffer.alloc(0);
  #wake: (() => void)[] = [];
  #pings = 0;
  /** Octets before the first frame (the client preface, when the H2Conn is a client). */
  preface: Buffer | undefined;
  closed = false;

  constructor(
    readonly socket: Socket,
    expectPreface: boolean,
  ) {
    if (expectPreface) this.preface = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
  }

  #onData(d: Buffer): void {
    let buf = Buffer.concat([this.#pending, d]);
    if (this.preface !== undefined && this.preface.length < CLIENT_PREFACE.length) {
      const n = Math.min(CLIENT_PREFACE.length - this.preface.length, buf.length);
      this.preface = Buffer.concat([this.preface, buf.subarray(0, n)]);
      buf = buf.subarray(n);
    }
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      this.frames.push({
        type: buf[3]!,
        flags: buf[4]!,
        stream: buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(buf.subarray(9, 9 + len)),
      });
      buf = buf.subarray(9 + len);
    }
    this.#pending = Buffer.from(buf);
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = [];
    for (const f of w) f();
  }

  send(...bytes: Buffer[]): void {
    if (!this.socket.destroyed && !this.socket.writableEnded)
      this.socket.write(Buffer.concat(bytes));
  }

  /** The first frame not yet taken that matches; fails if the socket closes first. */
  async next(what: string, match: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const f = this.frames.find((x) => !this.#taken.has(x) && match(x));
      if (f) {
        this.#taken.add(f);
        return f;
      }
      if (this.closed) throw new Error(`closed before ${what}; received: ${this.summary()}`);
      await new Promise<void>((r) => this.#wake.push(r));
    }
  }

  nextOf(type: number, stream?: number): Promise<Frame> {
    return this.next(`frame type ${type} on ${stream ?? 'any stream'}`, (f) => {
      if (f.type !== type || (stream !== undefined && f.stream !== stream)) return false;
      // PING and SETTINGS ACKs are the conn answering, not the frames tests wait for.
      return !((type === FRAME.PING || type === FRAME.SETTINGS) && f.flags & ACK);
    });
  }

  /**
   * A PING round trip: output is written in order, so every frame the conn produced for
   * what was sent before has arrived once the ACK is here.
   */
  async sync(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(0xc0ffee, 0);
    payload.writeUInt32BE(++this.#pings, 4);
    this.send(frame(FRAME.PING, 0, 0, payload));
    await this.next(
      'PING ACK',
      (f) => f.type === FRAME.PING && f.flags === ACK && f.payload.equals(payload),
    );
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#wake.push(r));
  }

  of(type: number, stream?: number): Frame[] {
    return this.frames.filter(
      (f) => f.type === type && (stream === undefined || f.stream === stream),
    );
  }

  summary(): string {
    return this.frames
      .map((f) => `${f.type}/${f.flags}/${f.stream}/${f.payload.length}`)
      .slice(-30)
      .join(' ');
  }
}

type Event =
  | { kind: 'headers'; fields: string[]; end: boolean }
  | { kind: 'data'; data: Buffer; end: boolean }
  | { kind: 'reset'; code: number; why: string };

/** A stream handler that records what it is told. */
class Recorder implements StreamHandler {
  readonly events: Event[] = [];
  constructor(private readonly onDataHook?: (data: Buffer) => void) {}
  onHeaders(fields: string[], end: boolean): void {
    this.events.push({ kind: 'headers', fields, end });
  }
  onData(data: Buffer, end: boolean): void {
    this.events.push({ kind: 'data', data: Buffer.from(data), end });
    this.onDataHook?.(data);
  }
  onReset(code: number, why: string): void {
    this.events.push({ kind: 'reset', code, why });
  }
  resets(): number[] {
    return this.events.flatMap((e) => (e.kind === 'reset' ? [e.code] : []));
  }
  received(): Buffer {
    return Buffer.concat(this.events.flatMap((e) => (e.kind === 'data' ? [e.data] : [])));
  }
}

interface Opened {
  stream: H2Stream;
  fields: string[];
  end: boolean;
  handler: Recorder;
}

interface Side {
  conn: H2Conn;
  peer: Peer;
  /** The socket under the H2Conn. */
  connSocket: Socket;
  opened: Opened[];
  refused: { fields: string[]; why: string }[];
  goaways: [number, number][];
  closed: () => boolean;
  /** Resolves when the conn's onClose ran. */
  whenClosed: Promise<void>;
}

/** Everything a test opened, closed after it. */
const cleanup: (() => void)[] = [];

async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => server.close());
  return server;
}

/**
 * A TCP pair on loopback with an H2Conn on one end. `autoCredit`: server streams give every
 * DATA octet back at once (as a proxy does once it forwarded them).
 */
async function pair(
  role: 'server' | 'client',
  { autoCredit, ...extra }: Partial<H2ConnOptions> & { autoCredit?: boolean } = {},
): Promise<Side> {
  const server = await listen();
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port });
  client.setNoDelay(true);
  await new Promise<void>((r, j) => {
    client.once('connect', () => r());
    client.once('error', j);
  });
  const serverSide = await accepted;
  serverSide.setNoDelay(true);
  cleanup.push(() => {
    client.destroy();
    serverSide.destroy();
  });
  const connSocket = role === 'server' ? serverSide : client;
  const peer = new Peer(role === 'server' ? client : serverSide, role === 'client');
  const opened: Opened[] = [];
  const refused: Side['refused'] = [];
  const goaways: [number, number][] = [];
  let closed = false;
  let setClosed = (): void => {};
  const whenClosed = new Promise<void>((r) => (setClosed = r));
  const conn = new H2Conn(connSocket, {
    role,
    idleTimeoutMs: 0,
    onStream: (stream, fields, end) => {
      const handler = new Recorder(autoCredit ? (d) => stream.credit(d.length) : undefined);
      stream.handler = handler;
      opened.push({ stream, fields, end, handler });
    },
    onRefusedStream: (fields, why) => refused.push({ fields, why }),
    onGoaway: (last, code) => goaways.push([last, code]),
    onClose: () => {
      closed = true;
      setClosed();
    },
    ...extra,
  });
  cleanup.push(() => conn.destroy());
  return { conn, peer, connSocket, opened, refused, goaways, closed: () => closed, whenClosed };
}

/** A server-role pair past the preface and the SETTINGS exchange. */
async function serverReady(
  extra: Partial<H2ConnOptions> & { autoCredit?: boolean } = {},
): Promise<Side> {
  const side = await pair('server', extra);
  side.peer.send(CLIENT_PREFACE, settings([]));
  await side.peer.next('SETTINGS ACK', (f) => f.type === FRAME.SETTINGS && f.flags === ACK);
  return side;
}

/** Field list as [name, value] pairs, for readable comparisons. */
function pairs(fields: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
}

function goawayOf(f: Frame): { last: number; code: number } {
  return { last: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
}

/** Resolves on the next read of `s`, or when it closes. */
function nextRead(s: Socket): Promise<void> {
  return new Promise((r) => {
    const done = (): void => {
      s.off('data', done);
      s.off('close', done);
      r();
    };
    s.on('data', done);
    s.on('close', done);
  });
}

/** Writes `bytes` one piece at a time, each its own read on the conn's side. */
async function feed(side: Side, bytes: Buffer, pieceLength: () => number): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    if (side.peer.socket.destroyed || side.peer.socket.writableEnded || side.connSocket.destroyed)
      return;
    const n = Math.max(1, pieceLength());
    const read = nextRead(side.connSocket);
    side.peer.socket.write(bytes.subarray(at, at + n));
    at += n;
    await read;
  }
}

describe('proxy/h2 connection (H2Conn over loopback TCP)', function () {
  this.timeout(60_000);

  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
  });

  describe('server role', () => {
    it('sends its SETTINGS and connection window, ACKs the client SETTINGS and answers PING with the same octets', async () => {
      const { peer } = await pair('server');
      const ping = Buffer.from('8 octets');
      peer.send(CLIENT_PREFACE, settings([[0x4, 100_000]]), frame(FRAME.PING, 0, 0, ping));
      const s = await peer.next('SETTINGS', (f) => f.type === FRAME.SETTINGS && f.flags === 0);
      expect(s.stream).to.equal(0);
      const values: [number, number][] = [];
      for (let at = 0; at < s.payload.length; at += 6)
        values.push([s.payload.readUInt16BE(at), s.payload.readUInt32BE(at + 2)]);
      expect(values).to.deep.equal([
        [0x2, 0], // ENABLE_PUSH
        [0x3, MAX_CONCURRENT_STREAMS],
        [0x4, STREAM_WINDOW],
        [0x5, 16_384], // MAX_FRAME_SIZE
        [0x6, 16_384], // MAX_HEADER_LIST_SIZE
      ]);
      expect(peer.frames[0]).to.equal(s, 'SETTINGS is the first frame');
      const wu = await peer.nextOf(FRAME.WINDOW_UPDATE, 0);
      expect(wu.payload.readUInt32BE(0)).to.equal(CONNECTION_WINDOW - 65_535);
      const ack = await peer.next(
        'SETTINGS ACK',
        (f) => f.type === FRAME.SETTINGS && f.flags === ACK,
      );
      expect(ack.payload.length).to.equal(0);
      const pong = await peer.next('PING ACK', (f) => f.type === FRAME.PING);
      expect(pong.flags).to.equal(ACK);
      expect(pong.payload).to.deep.equal(ping);
      // A PING ACK from the client is not answered.
      peer.send(frame(FRAME.PING, ACK, 0, Buffer.alloc(8)));
      await peer.sync();
      expect(peer.of(FRAME.PING).length).to.equal(2);
    });

    it('takes the preface one octet at a time', async () => {
      const side = await pair('server');
      await feed(side, Buffer.concat([CLIENT_PREFACE, settings([])]), () => 1);
      await side.peer.sync();
      expect(side.closed()).to.equal(false);
    });

    it('closes the socket on a wrong preface', async () => {
      const side = await pair('server');
      side.peer.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await side.peer.waitClosed();
      await side.whenClosed;
      expect(side.closed()).to.equal(true);
      // Only its own SETTINGS and window went out, no answer to the request.
      expect(side.peer.frames.map((f) => f.type)).to.deep.equal([
        FRAME.SETTINGS,
        FRAME.WINDOW_UPDATE,
      ]);
    });

    it('closes a connection whose preface does not come within prefaceTimeoutMs', async () => {
      const side = await pair('server', { prefaceTimeoutMs: 50 });
      side.peer.send(CLIENT_PREFACE.subarray(0, 10));
      await side.whenClosed;
      await side.peer.waitClosed();
    });

    it('sends GOAWAY NO_ERROR and closes after idleTimeoutMs with no stream open', async () => {
      const side = await pair('server', { idleTimeoutMs: 50 });
      side.peer.send(CLIENT_PREFACE, settings([]));
      const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
      expect(g).to.deep.equal({ last: 0, code: H2_CODE.noError });
      await side.whenClosed;
    });

    it('reads a request head across HEADERS and CONTINUATION frames, one octet per read', async () => {
      const side = await serverReady();
      const b = requestBlock('x-one', 'first', 'user-agent', 'test/1.0', 'x-two', 'second');
      const bytes = Buffer.concat([
        headers(1, b.subarray(0, 5), END_STREAM),
        frame(FRAME.CONTINUATION, 0, 1, b.subarray(5, 20)),
        frame(FRAME.CONTINUATION, 0, 1, Buffer.alloc(0)),
        frame(FRAME.CONTINUATION, END_HEADERS, 1, b.subarray(20)),
      ]);
      await feed(side, bytes, () => 1);
      await side.peer.sync();
      expect(side.opened.length).to.equal(1);
      const o = side.opened[0]!;
      expect(o.stream.id).to.equal(1);
      expect(o.end).to.equal(true);
      expect(pairs(o.fields)).to.deep.equal(
        pairs([...REQUEST, 'x-one', 'first', 'user-agent', 'test/1.0', 'x-two', 'second']),
      );
      expect(side.peer.of(FRAME.RST_STREAM)).to.deep.equal([]);
    });

    it('strips padding and priority fields from HEADERS (padding that would not decode is never read)', async () => {
      const side = await serverReady();
      const b = requestBlock('x-padded', 'yes');
      const payload = Buffer.concat([
        Buffer.from([6]), // pad length
        Buffer.from([0x80, 0, 0, 3, 200]), // exclusive, depends on 3, weight
        b.subarray(0, 10),
      ]);
      await feed(
        side,
        Buffer.concat([
          headers(1, Buffer.concat([payload, Buffer.alloc(6, 0xff)]), PADDED | PRIORITY),
          frame(FRAME.CONTINUATION, END_HEADERS, 1, b.subarray(10)),
          // Padded DATA: the padding is neither delivered nor counted as body.
          data(
            1,
            Buffer.concat([Buffer.from([3]), Buffer.from('body'), Buffer.alloc(3, 0xee)]),
            PADDED | END_STREAM,
          ),
        ]),
        () => 3,
      );
      await side.peer.sync();
      expect(side.opened.length).to.equal(1);
      expect(pairs(side.opened[0]!.fields)).to.deep.equal(pairs([...REQUEST, 'x-padded', 'yes']));
      expect(side.opened[0]!.handler.received().toString()).to.equal('body');
      expect(side.opened[0]!.handler.events.at(-1)).to.deep.include({ kind: 'data', end: true });
    });

    /** Request heads that break a rule: each must be refused, the next one delivered. */
    const malformed: [string, string[]][] = [
      ['CR in a value', [...REQUEST, 'x-a', 'a\rb']],
      ['LF in a value', [...REQUEST, 'x-a', 'a\nb']],
      ['NUL in a value', [...REQUEST, 'x-a', 'a\u0000b']],
      ['an upper-case name', [...REQUEST, 'X-Upper', 'v']],
      ['a space in a name', [...REQUEST, 'x a', 'v']],
      ['a value with a leading space', [...REQUEST, 'x-a', ' v']],
      ['a value with a trailing tab', [...REQUEST, 'x-a', 'v\t']],
      ['connection', [...REQUEST, 'connection', 'keep-alive']],
      ['keep-alive', [...REQUEST, 'keep-alive', 'timeout=5']],
      ['proxy-connection', [...REQUEST, 'proxy-connection', 'close']],
      ['transfer-encoding', [...REQUEST, 'transfer-encoding', 'chunked']],
      ['upgrade', [...REQUEST, 'upgrade', 'h2c']],
      ['te: gzip', [...REQUEST, 'te', 'gzip']],
      ['missing :path', [':method', 'GET', ':scheme', 'http', ':authority', 'svc']],
      ['empty :path', [':method', 'GET', ':scheme', 'http', ':path', '', ':authority', 'svc']],
      ['missing :method', [':scheme', 'http', ':path', '/', ':authority', 'svc']],
      ['an unknown pseudo-header', [...REQUEST, ':protocol', 'websocket']],
      ['a response pseudo-header', [...REQUEST, ':status', '200']],
      [
        'a pseudo-header after a regular field',
        [':method', 'GET', ':scheme', 'http', 'x-a', 'b', ':path', '/'],
      ],
      ['a duplicate :method', [...REQUEST, ':method', 'POST']],
      ['a duplicate :path', [':path', '/a', ...REQUEST]],
      ['CONNECT with :path', [':method', 'CONNECT', ':authority', 'svc:443', ':path', '/']],
      ['a bad content-length', [...REQUEST, 'content-length', '5x']],
      ['conflicting content-lengths', [...REQUEST, 'content-length', '5', 'content-length', '6']],
      ['a header list over 16 KiB', [...REQUEST, 'x-big', 'v'.repeat(16_400)]],
      [
        'more than 100 fields',
        [...REQUEST, ...Array.from({ length: 100 }, (_, i) => [`x-${i}`, 'v']).flat()],
      ],
    ];
    for (const [what, fields] of malformed)
      it(`refuses ${what} with RST_STREAM PROTOCOL_ERROR and keeps HPACK in step`, async () => {
        const side = await serverReady();
        // The refused block adds an entry to the dynamic table; the next block refers to it.
        const refusedBlock = Buffer.concat([
          block(...fields),
          indexedLiteral('x-tag', 'from-refused'),
        ]);
        side.peer.send(
          headerFrames(1, refusedBlock, END_HEADERS | END_STREAM),
          headers(3, Buffer.concat([requestBlock(), NEWEST_ENTRY]), END_HEADERS | END_STREAM),
        );
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
        await side.peer.sync();
        expect(side.refused.length, 'onRefusedStream').to.equal(1);
        expect(side.refused[0]!.why).to.be.a('string').and.not.equal('');
        expect(
          side.opened.map((o) => o.stream.id),
          'onStream',
        ).to.deep.equal([3]);
        expect(pairs(side.opened[0]!.fields)).to.deep.equal(
          pairs([...REQUEST, 'x-tag', 'from-refused']),
        );
        expect(side.peer.of(FRAME.RST_STREAM, 3)).to.deep.equal([]);
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
      });

    it('accepts te: trailers, CONNECT with :authority only and one repeated equal content-length', async () => {
      const side = await serverReady();
      side.peer.send(
        headers(1, requestBlock('te', 'trailers'), END_HEADERS | END_STREAM),
        headers(3, block(':method', 'CONNECT', ':authority', 'svc:443')),
        headers(5, requestBlock('content-length', '2', 'content-length', '2')),
        data(5, Buffer.from('ok'), END_STREAM),
      );
      await side.peer.sync();
      expect(side.refused).to.deep.equal([]);
      expect(side.opened.map((o) => o.stream.id)).to.deep.equal([1, 3, 5]);
      expect(side.opened[2]!.handler.received().toString()).to.equal('ok');
      expect(side.peer.of(FRAME.RST_STREAM)).to.deep.equal([]);
    });

    it('resets a stream whose body is shorter than its content-length (handler.onReset)', async () => {
      const side = await serverReady();
      side.peer.send(
        headers(1, requestBlock('content-length', '5')),
        data(1, Buffer.from('abc')),
        data(1, Buffer.alloc(0), END_STREAM),
      );
      const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
      expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
      const h = side.opened[0]!.handler;
      expect(h.received().toString()).to.equal('abc');
      expect(h.resets()).to.deep.equal([H2_CODE.protocol]);
      expect(h.events.at(-1)!.kind).to.equal('reset');
    });

    it('resets a stream whose body is longer than its content-length, or whose head ends it early', async () => {
      const side = await serverReady();
      side.peer.send(
        headers(1, requestBlock('content-length', '2')),
        data(1, Buffer.from('abc')),
        headers(3, requestBlock('content-length', '4'), END_HEADERS | END_STREAM),
        headers(5, requestBlock('content-length', '0'), END_HEADERS | END_STREAM),
      );
      const r1 = await side.peer.nextOf(FRAME.RST_STREAM, 1);
      expect(r1.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
      const r3 = await side.peer.nextOf(FRAME.RST_STREAM, 3);
      expect(r3.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
      await side.peer.sync();
      expect(side.opened[0]!.handler.resets()).to.deep.equal([H2_CODE.protocol]);
      expect(side.opened[0]!.handler.received().length).to.equal(0);
      expect(side.opened.map((o) => o.stream.id)).to.deep.equal([1, 5]);
      expect(side.peer.of(FRAME.RST_STREAM, 5)).to.deep.equal([]);
    });

    describe('flow control', () => {
      /** `n` octets of DATA on `stream` in full frames. */
      const body = (stream: number, n: number, flags = 0): Buffer[] => {
        const out: Buffer[] = [];
        for (let at = 0; at < n; at += 16_384) {
          const len = Math.min(16_384, n - at);
          out.push(data(stream, Buffer.alloc(len, 0x61), at + len === n ? flags : 0));
        }
        return out;
      };

      it('ends the connection with GOAWAY FLOW_CONTROL_ERROR past the 16 MiB connection window', async () => {
        const side = await serverReady();
        const perStream = STREAM_WINDOW;
        const streams = CONNECTION_WINDOW / perStream;
        for (let i = 0; i < streams; i++)
          side.peer.send(headers(1 + 2 * i, requestBlock()), ...body(1 + 2 * i, perStream));
        await side.peer.sync();
        // Exactly the window: still fine, and nothing given back without credit().
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
        expect(side.peer.of(FRAME.WINDOW_UPDATE).length).to.equal(1);
        const next = 1 + 2 * streams;
        side.peer.send(headers(next, requestBlock()), data(next, Buffer.from('x')));
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.flowControl);
        expect(g.last).to.equal(next);
        await side.peer.waitClosed();
        await side.whenClosed;
        // Every open stream was told.
        for (const o of side.opened)
          expect(o.handler.resets()).to.deep.equal([H2_CODE.flowControl]);
        expect(side.closed()).to.equal(true);
      });

      it('resets a stream with FLOW_CONTROL_ERROR past its window; the connection goes on', async () => {
        const side = await serverReady();
        side.peer.send(headers(1, requestBlock()), ...body(1, STREAM_WINDOW));
        await side.peer.sync();
        expect(side.peer.of(FRAME.RST_STREAM)).to.deep.equal([]);
        side.peer.send(data(1, Buffer.from('x')));
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.flowControl);
        expect(side.opened[0]!.handler.resets()).to.deep.equal([H2_CODE.flowControl]);
        expect(side.opened[0]!.handler.received().length).to.equal(STREAM_WINDOW);
        side.peer.send(headers(3, requestBlock(), END_HEADERS | END_STREAM));
        await side.peer.sync();
        expect(side.opened.map((o) => o.stream.id)).to.deep.equal([1, 3]);
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
      });

      it('gives a stream window back with WINDOW_UPDATE only after credit() reaches half the window', async () => {
        const side = await serverReady();
        // In fractions of the window: 60 % received, 40 % credited (below half), then up to half.
        const received = (STREAM_WINDOW / 1024) * 600;
        const first = (STREAM_WINDOW / 1024) * 400;
        side.peer.send(headers(1, requestBlock()), ...body(1, received));
        await side.peer.sync();
        const stream = side.opened[0]!.stream;
        expect(side.opened[0]!.handler.received().length).to.equal(received);
        expect(side.peer.of(FRAME.WINDOW_UPDATE, 1), 'no credit, no update').to.deep.equal([]);
        stream.credit(first);
        await side.peer.sync();
        expect(side.peer.of(FRAME.WINDOW_UPDATE, 1), 'below half').to.deep.equal([]);
        stream.credit(STREAM_WINDOW / 2 - first);
        await side.peer.sync();
        const updates = side.peer.of(FRAME.WINDOW_UPDATE, 1).map((f) => f.payload.readUInt32BE(0));
        expect(updates).to.deep.equal([STREAM_WINDOW / 2]);
        // The window given back is usable: exactly a full window may be in flight again.
        side.peer.send(...body(1, STREAM_WINDOW - (received - STREAM_WINDOW / 2)));
        await side.peer.sync();
        expect(side.peer.of(FRAME.RST_STREAM)).to.deep.equal([]);
        side.peer.send(data(1, Buffer.from('x')));
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.flowControl);
      });

      it('gives the connection window back once 8 MiB were credited', async () => {
        const side = await serverReady({ autoCredit: true });
        const before = CONNECTION_WINDOW / 2 - 16_384;
        side.peer.send(headers(1, requestBlock()), ...body(1, before));
        await side.peer.sync();
        const conn = (): number[] =>
          side.peer.of(FRAME.WINDOW_UPDATE, 0).map((f) => f.payload.readUInt32BE(0));
        expect(conn()).to.deep.equal([CONNECTION_WINDOW - 65_535]);
        // The stream's own window came back every 512 KiB.
        const perStream = side.peer
          .of(FRAME.WINDOW_UPDATE, 1)
          .map((f) => f.payload.readUInt32BE(0));
        expect(perStream.length).to.equal(Math.floor(before / (STREAM_WINDOW / 2)));
        for (const n of perStream) expect(n).to.equal(STREAM_WINDOW / 2);
        side.peer.send(...body(1, 16_384));
        await side.peer.sync();
        expect(conn()).to.deep.equal([CONNECTION_WINDOW - 65_535, CONNECTION_WINDOW / 2]);
        expect(side.opened[0]!.handler.resets()).to.deep.equal([]);
      });

      it('gives padding back without credit()', async () => {
        const side = await serverReady();
        side.peer.send(headers(1, requestBlock()));
        // One data octet, the pad length octet and 255 of padding: 256 octets to give back per
        // frame, so half the stream window after `frames` frames. The data octets stay (no credit()).
        const frames = STREAM_WINDOW / 2 / 256;
        const padded = data(
          1,
          Buffer.concat([Buffer.from([255]), Buffer.from('x'), Buffer.alloc(255)]),
          PADDED,
        );
        side.peer.send(...Array.from({ length: frames - 1 }, () => padded));
        await side.peer.sync();
        expect(side.peer.of(FRAME.WINDOW_UPDATE, 1)).to.deep.equal([]);
        side.peer.send(padded);
        await side.peer.sync();
        const updates = side.peer.of(FRAME.WINDOW_UPDATE, 1).map((f) => f.payload.readUInt32BE(0));
        expect(updates).to.deep.equal([STREAM_WINDOW / 2]);
        expect(side.opened[0]!.handler.received().toString()).to.equal('x'.repeat(frames));
      });
    });

    describe('sending', () => {
      it('splits a response head larger than a frame into HEADERS and CONTINUATIONs', async () => {
        const side = await serverReady();
        side.peer.send(headers(1, requestBlock(), END_HEADERS | END_STREAM));
        await side.peer.sync();
        const fields = [':status', '200', 'x-big', 'b'.repeat(40_000), 'x-after', 'yes'];
        side.opened[0]!.stream.headers(fields, true);
        const h = await side.peer.nextOf(FRAME.HEADERS, 1);
        expect(h.flags).to.equal(END_STREAM);
        expect(h.payload.length).to.equal(16_384);
        const c1 = await side.peer.nextOf(FRAME.CONTINUATION, 1);
        const c2 = await side.peer.nextOf(FRAME.CONTINUATION, 1);
        expect([c1.flags, c2.flags]).to.deep.equal([0, END_HEADERS]);
        const out: string[] = [];
        const err = new HpackDecoder().decode(
          Buffer.concat([h.payload, c1.payload, c2.payload]),
          (n, v) => out.push(n.toString('latin1'), v.toString('latin1')),
        );
        expect(err).to.equal(undefined);
        expect(out).to.deep.equal(fields);
        expect(side.conn.streams.size).to.equal(0);
      });

      it('holds response data for both the stream and the connection send windows, then sends it in order', async () => {
        const side = await serverReady();
        side.peer.send(headers(1, requestBlock(), END_HEADERS | END_STREAM));
        await side.peer.sync();
        const body = Buffer.alloc(100_000);
        for (let i = 0; i < body.length; i++) body[i] = i % 251;
        const s = side.opened[0]!.stream;
        s.headers([':status', '200'], false);
        s.data(body, true);
        await side.peer.sync();
        const sent = (): number =>
          side.peer.of(FRAME.DATA, 1).reduce((n, f) => n + f.payload.length, 0);
        // The protocol's initial windows: 65,535 octets, in frames of at most 16 KiB.
        expect(sent()).to.equal(65_535);
        for (const f of side.peer.of(FRAME.DATA, 1)) expect(f.payload.length).to.be.at.most(16_384);
        side.peer.send(windowUpdate(1, 100_000));
        await side.peer.sync();
        expect(sent(), 'the connection window is still closed').to.equal(65_535);
        side.peer.send(windowUpdate(0, 100_000));
        await side.peer.sync();
        const frames = side.peer.of(FRAME.DATA, 1);
        expect(Buffer.concat(frames.map((f) => f.payload))).to.deep.equal(body);
        expect(frames.map((f) => f.flags & END_STREAM).lastIndexOf(END_STREAM)).to.equal(
          frames.length - 1,
        );
        expect(frames.filter((f) => f.flags & END_STREAM).length).to.equal(1);
        expect(side.conn.streams.size).to.equal(0);
      });
    });

    describe('limits', () => {
      it(`refuses stream ${MAX_CONCURRENT_STREAMS + 1} with REFUSED_STREAM while ${MAX_CONCURRENT_STREAMS} are open`, async () => {
        const side = await serverReady();
        const frames: Buffer[] = [];
        for (let i = 0; i <= MAX_CONCURRENT_STREAMS; i++)
          frames.push(headers(1 + 2 * i, requestBlock()));
        side.peer.send(...frames);
        const extra = 1 + 2 * MAX_CONCURRENT_STREAMS;
        const r = await side.peer.nextOf(FRAME.RST_STREAM, extra);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.refusedStream);
        await side.peer.sync();
        expect(side.opened.length).to.equal(MAX_CONCURRENT_STREAMS);
        expect(side.peer.of(FRAME.RST_STREAM).length).to.equal(1);
        // Once one ends, a new stream is taken again.
        side.opened[0]!.stream.reset(H2_CODE.cancel);
        side.peer.send(headers(extra + 2, requestBlock()));
        await side.peer.sync();
        expect(side.opened.length).to.equal(MAX_CONCURRENT_STREAMS + 1);
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
      });

      it('ends the connection with ENHANCE_YOUR_CALM after more than 100 refused streams', async () => {
        const side = await serverReady();
        const frames: Buffer[] = [];
        for (let i = 0; i < MAX_CONCURRENT_STREAMS + 101; i++)
          frames.push(headers(1 + 2 * i, requestBlock()));
        side.peer.send(...frames);
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.enhanceYourCalm);
        expect(side.peer.of(FRAME.RST_STREAM).length).to.equal(101);
        await side.peer.waitClosed();
        await side.whenClosed;
      });

      it('ends the connection with ENHANCE_YOUR_CALM after more than 100 malformed requests', async () => {
        const side = await serverReady();
        const frames: Buffer[] = [];
        for (let i = 0; i < 100; i++)
          frames.push(headers(1 + 2 * i, requestBlock('te', 'gzip'), END_HEADERS | END_STREAM));
        side.peer.send(...frames);
        await side.peer.sync();
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
        expect(side.refused.length).to.equal(100);
        side.peer.send(headers(201, requestBlock('te', 'gzip'), END_HEADERS | END_STREAM));
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.enhanceYourCalm);
        expect(side.opened).to.deep.equal([]);
      });

      it('ends the connection with GOAWAY ENHANCE_YOUR_CALM for a header block over 64 KiB in CONTINUATIONs', async () => {
        const side = await serverReady();
        const piece = Buffer.alloc(16_000, 0x82);
        side.peer.send(
          headers(1, piece, 0),
          ...Array.from({ length: 4 }, () => frame(FRAME.CONTINUATION, 0, 1, piece)),
          frame(FRAME.CONTINUATION, END_HEADERS, 1, piece),
        );
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.enhanceYourCalm);
        await side.peer.waitClosed();
        await side.whenClosed;
        expect(side.opened).to.deep.equal([]);
      });

      it('decodes a header block of exactly 64 KiB (and refuses its stream for its size)', async () => {
        const side = await serverReady();
        const piece = Buffer.alloc(16_384, 0x82);
        side.peer.send(
          headers(1, piece, 0),
          frame(FRAME.CONTINUATION, 0, 1, piece),
          frame(FRAME.CONTINUATION, 0, 1, piece),
          frame(FRAME.CONTINUATION, END_HEADERS, 1, piece),
          headers(3, requestBlock(), END_HEADERS | END_STREAM),
        );
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
        await side.peer.sync();
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
        expect(side.opened.map((o) => o.stream.id)).to.deep.equal([3]);
      });

      it('ends the connection for a flood of empty CONTINUATION frames', async () => {
        const side = await serverReady();
        const empties = Array.from({ length: 10_000 }, () => frame(FRAME.CONTINUATION, 0, 1));
        side.peer.send(
          headers(1, requestBlock(), END_STREAM),
          ...empties,
          frame(FRAME.CONTINUATION, END_HEADERS, 1),
        );
        // Answered only if the conn let the flood through; fails fast either way.
        await side.peer.sync().catch(() => undefined);
        const codes = side.peer.of(FRAME.GOAWAY).map((f) => goawayOf(f).code);
        expect(codes).to.deep.equal([H2_CODE.enhanceYourCalm]);
        await side.whenClosed;
        expect(side.opened).to.deep.equal([]);
      });

      it('takes a header block in HEADERS and 32 CONTINUATIONs, not 33', async () => {
        const side = await serverReady();
        const b = requestBlock('x-a', 'v'.repeat(100));
        const split = (id: number, continuations: number): Buffer[] => {
          const out = [headers(id, b.subarray(0, 1), END_STREAM)];
          for (let i = 1; i <= continuations; i++)
            out.push(
              frame(
                FRAME.CONTINUATION,
                i === continuations ? END_HEADERS : 0,
                id,
                b.subarray(i, i === continuations ? b.length : i + 1),
              ),
            );
          return out;
        };
        side.peer.send(...split(1, 32));
        await side.peer.sync();
        expect(side.opened.length).to.equal(1);
        expect(pairs(side.opened[0]!.fields)).to.deep.equal(
          pairs([...REQUEST, 'x-a', 'v'.repeat(100)]),
        );
        side.peer.send(...split(3, 33));
        await side.peer.sync().catch(() => undefined);
        const codes = side.peer.of(FRAME.GOAWAY).map((f) => goawayOf(f).code);
        expect(codes).to.deep.equal([H2_CODE.enhanceYourCalm]);
        expect(side.opened.length).to.equal(1);
      });

      it('ends the connection with GOAWAY ENHANCE_YOUR_CALM for 300 HEADERS + RST_STREAM pairs (rapid reset)', async () => {
        const side = await serverReady();
        const frames: Buffer[] = [];
        for (let i = 0; i < 300; i++) {
          const id = 1 + 2 * i;
          frames.push(headers(id, requestBlock()), rst(id, H2_CODE.cancel));
        }
        side.peer.send(...frames);
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.enhanceYourCalm);
        // The bucket holds 200 and refills over time: at least the 201st reset ends it.
        expect(g.last).to.be.at.least(401);
        expect(side.opened.length).to.be.at.least(201);
        for (const o of side.opened.slice(0, 200))
          expect(o.handler.resets()).to.deep.equal([H2_CODE.cancel]);
        await side.peer.waitClosed();
        await side.whenClosed;
      });

      it('lets 150 HEADERS + RST_STREAM pairs through (within the burst)', async () => {
        const side = await serverReady();
        const frames: Buffer[] = [];
        for (let i = 0; i < 150; i++)
          frames.push(headers(1 + 2 * i, requestBlock()), rst(1 + 2 * i, H2_CODE.cancel));
        side.peer.send(...frames);
        await side.peer.sync();
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
        expect(side.opened.length).to.equal(150);
        expect(side.conn.streams.size).to.equal(0);
      });

      it('ends the connection with GOAWAY FRAME_SIZE_ERROR for a frame over 16384 octets', async () => {
        const side = await serverReady();
        side.peer.send(headers(1, requestBlock()), data(1, Buffer.alloc(16_385)));
        const g = goawayOf(await side.peer.nextOf(FRAME.GOAWAY));
        expect(g.code).to.equal(H2_CODE.frameSize);
        await side.peer.waitClosed();
        await side.whenClosed;
        expect(side.opened[0]!.handler.received().length).to.equal(0);
        expect(side.opened[0]!.handler.resets()).to.deep.equal([H2_CODE.frameSize]);
      });

      it('destroys a connection whose peer sends PINGs but never reads', async () => {
        const side = await serverReady();
        side.peer.socket.pause();
        const burst = Buffer.concat(
          Array.from({ length: 4096 }, () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))),
        );
        // 4096 PINGs per write, each answered with 17 octets; past 32 MiB queued the conn gives up.
        for (let i = 0; i < 1_000 && !side.closed(); i++) {
          const ok = side.peer.socket.write(burst);
          if (!ok)
            await Promise.race([
              new Promise((r) => side.peer.socket.once('drain', r)),
              side.whenClosed,
            ]);
        }
        expect(side.closed()).to.equal(true);
      });
    });

    describe('trailers', () => {
      it('delivers trailers after DATA as onHeaders(fields, true)', async () => {
        const side = await serverReady();
        side.peer.send(
          headers(1, requestBlock('te', 'trailers')),
          data(1, Buffer.from('part')),
          headers(1, block('grpc-status', '0', 'x-checksum', 'abc'), END_HEADERS | END_STREAM),
        );
        await side.peer.sync();
        const h = side.opened[0]!.handler;
        expect(h.events.map((e) => e.kind)).to.deep.equal(['data', 'headers']);
        expect(h.events[1]).to.deep.equal({
          kind: 'headers',
          fields: ['grpc-status', '0', 'x-checksum', 'abc'],
          end: true,
        });
        expect(side.conn.streams.get(1)!.remoteEnded).to.equal(true);
      });

      const badTrailers: [string, Buffer, number][] = [
        ['a pseudo-header', block(':path', '/'), END_HEADERS | END_STREAM],
        ['a malformed field', block('x-a', 'a\nb'), END_HEADERS | END_STREAM],
        ['no END_STREAM', block('x-a', 'b'), END_HEADERS],
      ];
      for (const [what, b, flags] of badTrailers)
        it(`resets a stream whose trailers have ${what}`, async () => {
          const side = await serverReady();
          side.peer.send(
            headers(1, requestBlock()),
            data(1, Buffer.from('part')),
            headers(1, b, flags),
          );
          const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
          expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
          const h = side.opened[0]!.handler;
          expect(h.events.map((e) => e.kind)).to.deep.equal(['data', 'reset']);
          expect(h.resets()).to.deep.equal([H2_CODE.protocol]);
        });

      it('resets a stream whose trailers come with fewer octets than its content-length', async () => {
        const side = await serverReady();
        side.peer.send(
          headers(1, requestBlock('content-length', '10')),
          data(1, Buffer.from('part')),
          headers(1, block('x-t', '1'), END_HEADERS | END_STREAM),
        );
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
        expect(side.opened[0]!.handler.resets()).to.deep.equal([H2_CODE.protocol]);
      });
    });

    describe('random frame streams (seeded) fed in random pieces', () => {
      const seedBlocks = [
        requestBlock(),
        requestBlock('content-length', '3'),
        Buffer.concat([requestBlock(), indexedLiteral('x-i', 'v'), NEWEST_ENTRY]),
        block('grpc-status', '0'),
        Buffer.from('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'.replace(/ /g, ''), 'hex'),
      ];

      function randomFrames(next: () => number): { bytes: Buffer; framed: boolean } {
        const frames: Buffer[] = [
          next() % 8 === 0 ? Buffer.from('PRI * HTTP/2.0\r\n\r\nSN\r\n\r\n') : CLIENT_PREFACE,
        ];
        for (let f = next() % 40; f >= 0; f--) {
          const type = [0, 0, 1, 1, 1, 2, 3, 4, 6, 7, 8, 9, 9, next() & 0xff][next() % 14]!;
          const stream = [0, 1, 1, 3, 3, 5, 2, next() % 64, next()][next() % 9]! & 0x7fffffff;
          let payload: Buffer;
          const shape = next() % 6;
          if (shape === 0) payload = Buffer.alloc(next() % 20);
          else if (shape === 1) payload = Buffer.alloc(next() % 17_000, next() & 0xff);
          else if (shape === 2) {
            const b = seedBlocks[next() % seedBlocks.length]!;
            payload = Buffer.from(b.subarray(0, next() % (b.length + 1)));
          } else payload = Buffer.from(Array.from({ length: next() % 24 }, () => next() & 0xff));
          if (payload.length > 0 && next() % 3 === 0)
            payload[next() % payload.length] = next() & 0xff;
          let flags = next() & 0xff;
          if (next() % 2) flags &= ~(PADDED | PRIORITY);
          frames.push(
            frame(
              type,
              flags,
              stream,
              payload.subarray(0, Math.min(payload.length, 16_384 + (next() % 2))),
            ),
          );
        }
        const bytes = Buffer.concat(frames);
        const corrupt = next() % 5 === 0;
        if (corrupt)
          for (let k = next() % 4; k >= 0; k--) bytes[next() % bytes.length] = next() & 0xff;
        return { bytes, framed: !corrupt };
      }

      it('never throws, and each connection ends or keeps answering with bounded memory', async () => {
        const uncaught: unknown[] = [];
        const record = (e: unknown): void => void uncaught.push(e);
        process.on('uncaughtException', record);
        const heapBefore = process.memoryUsage().heapUsed;
        let ended = 0;
        let answering = 0;
        try {
          const next = rng(0x2024);
          for (let run = 0; run < 150; run++) {
            const side = await pair('server', {
              onStream: (stream) => {
                // Some streams are answered, some given back credit, some left open.
                stream.handler = new Recorder((d) =>
                  next() % 2 ? stream.credit(d.length) : undefined,
                );
                if (next() % 3 === 0) stream.headers([':status', '200'], next() % 2 === 0);
              },
            });
            const { bytes, framed } = randomFrames(next);
            await feed(side, bytes, () => 1 + (next() % 64));
            if (framed && !side.peer.closed) {
              // Whole frames were sent: the conn either answers a PING or has ended.
              const payload = Buffer.from('syncsync');
              side.peer.send(frame(FRAME.PING, 0, 0, payload));
              await side.peer
                .next(
                  'PING ACK',
                  (f) => f.type === FRAME.PING && f.flags === ACK && f.payload.equals(payload),
                )
                .then(
                  () => answering++,
                  () => ended++,
                );
            } else ended++;
            expect(side.conn.streams.size, `run ${run}`).to.be.at.most(MAX_CONCURRENT_STREAMS);
            expect(side.connSocket.writableLength, `run ${run}`).to.be.below(1024 * 1024);
            side.peer.socket.end();
            await side.whenClosed;
            expect(side.conn.streams.size).to.equal(0);
            for (const f of cleanup.splice(0).reverse()) f();
          }
        } finally {
          process.off('uncaughtException', record);
        }
        expect(uncaught).to.deep.equal([]);
        // Both outcomes occur, so the runs test something.
        expect(ended).to.be.greaterThan(0);
        expect(answering).to.be.greaterThan(0);
        expect(process.memoryUsage().heapUsed - heapBefore).to.be.below(256 * 1024 * 1024);
      });
    });
  });

  describe('client role', () => {
    const RESPONSE = [':status', '200', 'content-type', 'text/plain'];

    /** A client-role pair with the peer's SETTINGS sent and ACKed. */
    async function clientReady(peerSettings: [number, number][] = []): Promise<Side> {
      const side = await pair('client');
      side.peer.send(settings(peerSettings));
      await side.peer.next('SETTINGS ACK', (f) => f.type === FRAME.SETTINGS && f.flags === ACK);
      return side;
    }

    function decodeHeaders(d: HpackDecoder, f: Frame): string[] {
      const out: string[] = [];
      expect(
        d.decode(f.payload, (n, v) => out.push(n.toString('latin1'), v.toString('latin1'))),
      ).to.equal(undefined);
      return out;
    }

    it('sends the preface first, then SETTINGS, and a request head the peer can decode', async () => {
      const side = await pair('client');
      const h = new Recorder();
      side.conn.open(REQUEST, true, h);
      const s = await side.peer.next('SETTINGS', (f) => f.type === FRAME.SETTINGS);
      expect(side.peer.preface).to.deep.equal(CLIENT_PREFACE);
      expect(side.peer.frames[0]).to.equal(s);
      const push = s.payload.subarray(0, 6);
      expect([push.readUInt16BE(0), push.readUInt32BE(2)]).to.deep.equal([0x2, 0]);
      const hf = await side.peer.nextOf(FRAME.HEADERS, 1);
      expect(hf.flags).to.equal(END_HEADERS | END_STREAM);
      expect(decodeHeaders(new HpackDecoder(), hf)).to.deep.equal(REQUEST);
      side.peer.send(
        settings([]),
        headers(1, block(...RESPONSE)),
        data(1, Buffer.from('hi'), END_STREAM),
      );
      await side.peer.sync();
      expect(h.events).to.deep.equal([
        { kind: 'headers', fields: RESPONSE, end: false },
        { kind: 'data', data: Buffer.from('hi'), end: true },
      ]);
      expect(side.conn.streams.size).to.equal(0);
    });

    it('tells a stream above GOAWAY last-stream-id REFUSED_STREAM; the one below completes', async () => {
      const side = await clientReady();
      const h1 = new Recorder();
      const h3 = new Recorder();
      side.conn.open(REQUEST, true, h1);
      side.conn.open(REQUEST, true, h3);
      await side.peer.nextOf(FRAME.HEADERS, 1);
      await side.peer.nextOf(FRAME.HEADERS, 3);
      side.peer.send(goaway(1, H2_CODE.noError));
      await side.peer.sync();
      expect(h3.resets()).to.deep.equal([H2_CODE.refusedStream]);
      expect(h1.events).to.deep.equal([]);
      expect(side.goaways).to.deep.equal([[1, H2_CODE.noError]]);
      expect(side.conn.goingAway).to.equal(true);
      expect(side.conn.canOpen).to.equal(false);
      side.peer.send(headers(1, block(':status', '204'), END_HEADERS | END_STREAM));
      await side.peer.waitClosed();
      await side.whenClosed;
      expect(h1.events).to.deep.equal([{ kind: 'headers', fields: [':status', '204'], end: true }]);
      expect(side.closed()).to.equal(true);
    });

    it("keeps to the peer's INITIAL_WINDOW_SIZE of 10: 40 octets go out 10 at a time, in order, END_STREAM last", async () => {
      const side = await clientReady([[0x4, 10]]);
      const h = new Recorder();
      const s = side.conn.open(REQUEST, false, h);
      const body = Buffer.from('0123456789abcdefghijABCDEFGHIJ!@#$%^&*()');
      expect(body.length).to.equal(40);
      s.data(body, true);
      const sent: Buffer[] = [];
      for (let round = 0; round < 4; round++) {
        const d = await side.peer.nextOf(FRAME.DATA, 1);
        expect(d.payload.length, `round ${round}`).to.equal(10);
        sent.push(d.payload);
        if (round === 3) break;
        await side.peer.sync();
        const more = side.peer.of(FRAME.DATA, 1);
        expect(more.length, `only one frame per window, round ${round}`).to.equal(round + 1);
        expect(d.flags & END_STREAM).to.equal(0);
        side.peer.send(windowUpdate(1, 10));
      }
      const all = side.peer.of(FRAME.DATA, 1);
      if (all.length === 4) {
        // END_STREAM rode on the last 10 octets...
        expect(all[3]!.flags & END_STREAM).to.equal(END_STREAM);
      } else {
        // ...or came after them, alone.
        const last = await side.peer.nextOf(FRAME.DATA, 1);
        expect(last.payload.length).to.equal(0);
        expect(last.flags & END_STREAM).to.equal(END_STREAM);
      }
      expect(Buffer.concat(sent)).to.deep.equal(body);
      await side.peer.sync();
      const flags = side.peer.of(FRAME.DATA, 1).map((f) => f.flags & END_STREAM);
      expect(flags.slice(0, -1).every((f) => f === 0)).to.equal(true);
      expect(s.localEnded).to.equal(true);
    });

    const badResponses: [string, string[]][] = [
      ['connection: close', [':status', '200', 'connection', 'close']],
      ['transfer-encoding', [':status', '200', 'transfer-encoding', 'chunked']],
      ['a two-digit :status', [':status', '20']],
      ['a non-numeric :status', [':status', 'abc']],
      ['a four-digit :status', [':status', '2000']],
      ['no :status', ['content-type', 'text/plain']],
      ['two :status', [':status', '200', ':status', '204']],
      [':status after a regular field', ['x-a', 'b', ':status', '200']],
      ['a request pseudo-header', [':status', '200', ':path', '/']],
      ['a malformed field', [':status', '200', 'x-a', 'a\rb']],
    ];
    for (const [what, fields] of badResponses)
      it(`resets a stream whose response head has ${what}`, async () => {
        const side = await clientReady();
        const bad = new Recorder();
        const good = new Recorder();
        side.conn.open(REQUEST, true, bad);
        side.conn.open(REQUEST, true, good);
        side.peer.send(
          headers(1, block(...fields), END_HEADERS | END_STREAM),
          headers(3, block(...RESPONSE), END_HEADERS | END_STREAM),
        );
        const r = await side.peer.nextOf(FRAME.RST_STREAM, 1);
        expect(r.payload.readUInt32BE(0)).to.equal(H2_CODE.protocol);
        await side.peer.sync();
        expect(bad.events.map((e) => e.kind)).to.deep.equal(['reset']);
        expect(bad.resets()).to.deep.equal([H2_CODE.protocol]);
        expect(good.events).to.deep.equal([{ kind: 'headers', fields: RESPONSE, end: true }]);
        expect(side.peer.of(FRAME.GOAWAY)).to.deep.equal([]);
      });

    it('resets a stream that gets DATA before its response head', async () => {
      const side = await clientReady();
      const h = new Recorder();
      const other = new Recorder();
      side.conn.open(REQUEST, true, h);
      side.conn.open(REQUEST, true, other);
      side.peer.send(
        data(1, Buffer.from('early')),
        headers(1, block(...RESPONSE)),
        // After a 1xx the final head is still to come: DATA is just as early.
        headers(3, block(':status', '100')),
        data(3, Buffer.from('early'), END_STREAM),
      );
      await side.peer.sync();
      const resets = side.peer
        .of(FRAME.RST_STREAM)
        .map((f) => [f.stream, f.payload.readUInt32BE(0)]);
      expect(resets).to.deep.equal([
        [1, H2_CODE.protocol],
        [3, H2_CODE.protocol],
      ]);
      expect(h.events.map((e) => e.kind)).to.deep.equal(['reset']);
      expect(other.events.map((e) => e.kind)).to.deep.equal(['reset']);
      expect(side.conn.streams.size).to.equal(0);
    });

    it('sends trailers after data that waited for window', async () => {
      const side = await clientReady([[0x4, 10]]);
      const s = side.conn.open(REQUEST, false, new Recorder());
      s.data(Buffer.alloc(25, 0x61), false);
      s.trailers(['grpc-status', '0']);
      await side.peer.nextOf(FRAME.DATA, 1);
      side.peer.send(windowUpdate(1, 10));
      await side.peer.nextOf(FRAME.DATA, 1);
      await side.peer.sync();
      expect(side.peer.of(FRAME.HEADERS, 1).length, 'request head only').to.equal(1);
      side.peer.send(windowUpdate(1, 10));
      const last = await side.peer.nextOf(FRAME.DATA, 1);
      expect(last.payload.length).to.equal(5);
      const t = await side.peer.next(
        'trailers',
        (f) => f.type === FRAME.HEADERS && f.stream === 1 && (f.flags & END_STREAM) !== 0,
      );
      const d = new HpackDecoder();
      decodeHeaders(d, side.peer.of(FRAME.HEADERS, 1)[0]!);
      expect(decodeHeaders(d, t)).to.deep.equal(['grpc-status', '0']);
      expect(side.peer.of(FRAME.DATA, 1).map((f) => f.flags & END_STREAM)).to.deep.equal([0, 0, 0]);
    });

    it('skips a 1xx interim head and delivers the final one', async () => {
      const side = await clientReady();
      const h = new Recorder();
      side.conn.open(REQUEST, true, h);
      side.peer.send(
        headers(1, block(':status', '103', 'link', '</a>')),
        headers(1, block(':status', '200'), END_HEADERS | END_STREAM),
      );
      await side.peer.sync();
      expect(h.events).to.deep.equal([{ kind: 'headers', fields: [':status', '200'], end: true }]);
    });
  });
});
