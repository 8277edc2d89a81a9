/**
 * The HTTP/2 header screen on raw bytes: which streams it names malformed, how it follows
 * frames (CONTINUATION, padding, priority, DATA that merely looks like headers, reads split
 * anywhere), when it gives up on the connection, and random input that must never throw.
 */
import { expect } from 'chai';
import {
  H2HeaderScreen,
  H2_ERROR,
  isValidField,
  type ScreenLimits,
} from '../../../src/proxy/http/h2-header-screen.js';
import { HpackDecoder } from '../../../src/proxy/http/hpack.js';

const LIMITS: ScreenLimits = {
  maxFrameSize: 16_384,
  maxHeaderBlockBytes: 65_536,
  headerTableSize: 4096,
};
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const str = (s: string): Buffer =>
  Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
const lit = (n: string, v: string, indexing = false): Buffer =>
  Buffer.concat([Buffer.from([indexing ? 0x40 : 0x00]), str(n), str(v)]);
const GET = Buffer.from([0x82, 0x87, 0x84]);
const block = (...fields: [string, string][]): Buffer =>
  Buffer.concat([GET, ...fields.map(([n, v]) => lit(n, v))]);

/** Feeds `bytes` (after the preface) in pieces of `step`; the streams named and the end. */
function screen(bytes: Buffer, step = bytes.length + PREFACE.length) {
  const bad: number[] = [];
  const s = new H2HeaderScreen((id) => bad.push(id), LIMITS);
  const all = Buffer.concat([PREFACE, bytes]);
  let passed = 0;
  for (let i = 0; i < all.length; i += step) {
    const chunk = all.subarray(i, i + step);
    const n = s.feed(chunk);
    passed += n;
    if (n < chunk.length) break;
  }
  return { bad, failure: s.failure, passed, total: all.length };
}

const H = 1;
const CONT = 9;
const END_STREAM = 1;
const END_HEADERS = 4;

describe('proxy/h2 header screen', () => {
  describe('isValidField (RFC 9113 8.2.1)', () => {
    const ok: [string, string][] = [
      ['x-a', 'b'],
      ['x-a', ''],
      [':path', '/x'],
      ["!#$%&'*+-.^_`|~09az", 'v a\tl\u00ff'],
      ['x', 'a b'],
    ];
    const bad: [string, string][] = [
      ['', 'a'],
      [':', 'a'],
      [':Path', '/'],
      [':pa-th', '/'],
      ['X-a', 'b'],
      ['x a', 'b'],
      ['x:a', 'b'],
      ['x"a', 'b'],
      ['x\u00e9', 'b'],
      ['x', 'a\rb'],
      ['x', 'a\nb'],
      ['x', 'a\u0000b'],
      ['x', ' a'],
      ['x', 'a '],
      ['x', '\ta'],
      ['x', 'a\t'],
      ['x', ' '],
    ];
    const b = (s: string): Buffer => Buffer.from(s, 'latin1');
    for (const [n, v] of ok)
      it(`accepts ${JSON.stringify(n)}: ${JSON.stringify(v)}`, () =>
        expect(isValidField(b(n), b(v))).to.equal(true));
    for (const [n, v] of bad)
      it(`refuses ${JSON.stringify(n)}: ${JSON.stringify(v)}`, () =>
        expect(isValidField(b(n), b(v))).to.equal(false));
  });

  it('names nothing for good requests, and the stream of a bad one', () => {
    const r = screen(
      Buffer.concat([
        frame(4, 0, 0, Buffer.alloc(0)),
        frame(H, END_HEADERS | END_STREAM, 1, block(['x-a', 'ok'])),
        frame(H, END_HEADERS | END_STREAM, 3, block(['x-a', 'a\r\nb'])),
        frame(H, END_HEADERS | END_STREAM, 5, block()),
      ]),
    );
    expect(r.bad).to.deep.equal([3]);
    expect(r.failure).to.equal(undefined);
    expect(r.passed).to.equal(r.total);
  });

  it('follows a block across HEADERS and CONTINUATION frames, a bad field split between them, read one octet at a time', () => {
    const b = block(['x-good', 'yes'], ['x-bad', 'a\u0000b']);
    const cut1 = GET.length + 4;
    const cut2 = b.length - 3;
    const bytes = Buffer.concat([
      frame(H, 0, 1, b.subarray(0, cut1)),
      frame(CONT, 0, 1, b.subarray(cut1, cut2)),
      frame(CONT, END_HEADERS, 1, b.subarray(cut2)),
      frame(H, END_HEADERS, 3, block(['x-fine', '1'])),
    ]);
    for (const step of [1, 2, 7, 1000]) {
      const r = screen(bytes, step);
      expect(r.bad, `step ${step}`).to.deep.equal([1]);
      expect(r.failure).to.equal(undefined);
    }
  });

  it('strips padding and the priority fields before decoding', () => {
    const b = block(['x-bad', ' lead']);
    const payload = Buffer.concat([
      Buffer.from([4]), // pad length
      Buffer.from([0, 0, 0, 0, 16]), // exclusive, dependency, weight
      b,
      Buffer.alloc(4, 0xff), // padding that would be invalid HPACK if decoded
    ]);
    const r = screen(frame(H, END_HEADERS | 0x8 | 0x20, 1, payload), 3);
    expect(r.bad).to.deep.equal([1]);
    expect(r.failure).to.equal(undefined);
  });

  it('skips DATA and other payloads, even when they look like header blocks', () => {
    const r = screen(
      Buffer.concat([
        frame(H, END_HEADERS, 1, block()),
        frame(0, 0, 1, lit('x-bad', 'a\rb')),
        frame(8, 0, 0, Buffer.from([0, 0, 0x10, 0])), // WINDOW_UPDATE
        frame(0, END_STREAM, 1, Buffer.from('\u0080garbage')),
        frame(H, END_HEADERS | END_STREAM, 3, block()),
      ]),
    );
    expect(r.bad).to.deep.equal([]);
    expect(r.failure).to.equal(undefined);
  });

  it('names a stream whose trailers are malformed', () => {
    const r = screen(
      Buffer.concat([
        frame(H, END_HEADERS, 1, block()),
        frame(0, 0, 1, Buffer.from('body')),
        frame(H, END_HEADERS | END_STREAM, 1, lit('x-trailer', 'a\nb')),
      ]),
    );
    expect(r.bad).to.deep.equal([1]);
  });

  it('keeps the dynamic table in step through refused blocks', () => {
    const r = screen(
      Buffer.concat([
        frame(H, END_HEADERS, 1, Buffer.concat([GET, lit('x-bad', 'a\rb', true)])),
        frame(H, END_HEADERS, 3, Buffer.concat([GET, Buffer.from([0xbe])])), // the bad field again
        frame(H, END_HEADERS, 5, Buffer.concat([GET, lit('x-ok', 'fine', true)])),
        frame(H, END_HEADERS, 7, Buffer.concat([GET, Buffer.from([0xbe])])), // x-ok
      ]),
    );
    expect(r.bad).to.deep.equal([1, 3]);
  });

  const good = frame(H, END_HEADERS, 1, block());
  /** What, the frames before the one that breaks the connection, that frame, the code. */
  const fatal: [string, Buffer[], Buffer, number][] = [
    [
      'a block that does not decode',
      [good],
      frame(H, END_HEADERS, 3, Buffer.from([0x80])),
      H2_ERROR.compression,
    ],
    [
      'padding longer than the frame',
      [good],
      frame(H, END_HEADERS | 0x8, 3, Buffer.from([9, 0x82])),
      H2_ERROR.protocol,
    ],
    [
      'a frame above the frame size',
      [good],
      frame(0, 0, 1, Buffer.alloc(16_385)),
      H2_ERROR.frameSize,
    ],
    ['HEADERS on stream 0', [good], frame(H, END_HEADERS, 0, GET), H2_ERROR.protocol],
    [
      'a CONTINUATION with no block open',
      [good],
      frame(CONT, END_HEADERS, 1, GET),
      H2_ERROR.protocol,
    ],
    [
      'a block interrupted by another frame',
      [good, frame(H, 0, 3, GET)],
      frame(0, 0, 3, Buffer.from('x')),
      H2_ERROR.protocol,
    ],
    [
      'a block continued on another stream',
      [frame(H, 0, 1, GET)],
      frame(CONT, END_HEADERS, 3, GET),
      H2_ERROR.protocol,
    ],
    [
      'a PUSH_PROMISE from the client',
      [good],
      frame(5, END_HEADERS, 2, Buffer.alloc(4)),
      H2_ERROR.protocol,
    ],
    [
      'a block above the limit',
      [
        frame(H, 0, 1, Buffer.alloc(16_000, 0x82)),
        ...Array.from({ length: 3 }, () => frame(CONT, 0, 1, Buffer.alloc(16_000, 0x82))),
      ],
      frame(CONT, 0, 1, Buffer.alloc(16_000, 0x82)),
      H2_ERROR.enhanceYourCalm,
    ],
  ];
  for (const [what, before, breaking, code] of fatal)
    it(`ends the connection on ${what}, letting through only the frames before`, () => {
      const head = Buffer.concat(before);
      for (const step of [1, 5000, 1_000_000]) {
        const r = screen(Buffer.concat([head, breaking, good]), step);
        expect(r.failure?.code, r.failure?.message).to.equal(code);
        // Fed in pieces, a piece that ends inside the breaking frame may let part of it pass.
        if (step === 1_000_000) expect(r.passed).to.equal(PREFACE.length + head.length);
        else expect(r.passed).to.be.at.most(PREFACE.length + head.length + breaking.length);
      }
    });

  it('ends a connection that does not start with the preface', () => {
    const s = new H2HeaderScreen(() => {}, LIMITS);
    expect(s.feed(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).to.equal(0);
    expect(s.failure?.code).to.equal(H2_ERROR.protocol);
    expect(s.feed(Buffer.from('more'))).to.equal(0);
  });

  describe('random input never throws and always ends', () => {
    /** xorshift32: reproducible runs without Math.random. */
    function rng(seed: number): () => number {
      let x = seed >>> 0 || 1;
      return () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x;
      };
    }
    const seeds = [
      Buffer.from('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'.replace(/ /g, ''), 'hex'),
      Buffer.from(
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'.replace(/ /g, ''),
        'hex',
      ),
      block(['x-a', 'b'], ['cookie', 'a=1']),
      Buffer.concat([GET, lit('x-i', 'v', true), Buffer.from([0xbe, 0x3f, 0xe1, 0x1f])]),
    ];

    it('mutated and random header blocks: the decoder answers fields or an error', () => {
      const next = rng(12345);
      for (let i = 0; i < 20_000; i++) {
        const base = seeds[next() % seeds.length]!;
        const b = Buffer.from(base);
        const mode = next() % 3;
        if (mode === 0) for (let k = next() % 4; k >= 0; k--) b[next() % b.length] = next() & 0xff;
        const input =
          mode === 1
            ? Buffer.from(Array.from({ length: next() % 64 }, () => next() & 0xff))
            : mode === 2
              ? b.subarray(0, next() % (b.length + 1))
              : b;
        const d = new HpackDecoder();
        let fields = 0;
        const r = d.decode(input, () => fields++);
        expect(r === undefined || typeof r === 'string').to.equal(true);
        expect(fields).to.be.at.most(input.length);
      }
    });

    it('random frame streams through the screen, fed in random pieces', () => {
      const next = rng(777);
      for (let i = 0; i < 3_000; i++) {
        const frames: Buffer[] = [];
        for (let f = next() % 6; f >= 0; f--) {
          const type = [0, 1, 1, 9, 8, 3, 4, next() & 0xff][next() % 8]!;
          const base = seeds[next() % seeds.length]!;
          const payload = Buffer.from(base.subarray(0, next() % (base.length + 1)));
          if (payload.length > 0 && next() % 2) payload[next() % payload.length] = next() & 0xff;
          frames.push(frame(type, next() & 0xff, next() % 4, payload));
        }
        const bytes = Buffer.concat([PREFACE, ...frames]);
        if (next() % 4 === 0 && bytes.length > 0) bytes[next() % bytes.length] = next() & 0xff;
        const s = new H2HeaderScreen(() => {}, LIMITS);
        let off = 0;
        while (off < bytes.length) {
          const piece = bytes.subarray(off, off + 1 + (next() % 40));
          const n = s.feed(piece);
          expect(n).to.be.within(0, piece.length);
          if (n < piece.length) {
            expect(s.failure).to.not.equal(undefined);
            break;
          }
          off += piece.length;
        }
      }
    });
  });
});
