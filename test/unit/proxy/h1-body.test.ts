/**
 * BodyFramer (src/proxy/http/h1-body.ts): where a body ends on the raw bytes, for every
 * framing and chunk rule in its header comment. Every vector is also fed split at every byte
 * boundary and one byte at a time: the framer must find the same end, the same data count and
 * the same decision however the bytes arrive.
 */
import { expect } from 'chai';
import {
  BodyFramer,
  BodyKind,
  CHUNK_DATA_PER_OVERHEAD_BYTE,
  CHUNK_FREE_OVERHEAD,
} from '../../../src/proxy/http/h1-body.js';

interface Outcome {
  /** Bytes taken as the body (the rest is the next message), or -1 when refused. */
  taken: number;
  done: boolean;
  data: number;
  error: string;
}

/** Feeds `pieces` in order; stops at the first refusal or once the body is done. */
function feed(kind: BodyKind, length: number, cap: boolean, pieces: Buffer[]): Outcome {
  const f = new BodyFramer();
  f.start(kind, length, cap);
  let taken = 0;
  for (const p of pieces) {
    if (f.done) break;
    const end = f.feed(p, 0);
    if (end < 0) return { taken: -1, done: f.done, data: f.data, error: f.error };
    expect(end).to.be.within(0, p.length);
    taken += end;
    if (end < p.length) {
      // Bytes left in a piece are the next message: the body must be complete by then.
      expect(f.done, 'bytes left over but the body is not done').to.equal(true);
      break;
    }
  }
  return { taken, done: f.done, data: f.data, error: f.error };
}

/** The outcome with the bytes in one piece, split in two at every boundary, and byte by byte. */
function sameEverywhere(kind: BodyKind, length: number, cap: boolean, bytes: Buffer): Outcome {
  const whole = feed(kind, length, cap, [bytes]);
  for (let at = 1; at < bytes.length; at++) {
    const split = feed(kind, length, cap, [bytes.subarray(0, at), bytes.subarray(at)]);
    expect(split, `split at ${at}`).to.deep.equal(whole);
  }
  const bytewise = feed(
    kind,
    length,
    cap,
    Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)),
  );
  expect(bytewise, 'one byte at a time').to.deep.equal(whole);
  return whole;
}

/** feed() honours its start index: the same bytes behind a prefix give the same end. */
function fromOffset(kind: BodyKind, length: number, bytes: Buffer): number {
  const f = new BodyFramer();
  f.start(kind, length, true);
  const prefix = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  const end = f.feed(Buffer.concat([prefix, bytes]), prefix.length);
  return end < 0 ? -1 : end - prefix.length;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const show = (s: string): string => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);

describe('proxy/h1-body: BodyFramer', () => {
  describe('no body, Content-Length, until close', () => {
    it('None takes nothing and is done at once', () => {
      const f = new BodyFramer();
      f.start(BodyKind.None, 0, true);
      expect(f.done).to.equal(true);
      expect(f.feed(b('GET / HTTP/1.1\r\n\r\n'), 0)).to.equal(0);
    });
    it('Content-Length 0 is no body', () => {
      const f = new BodyFramer();
      f.start(BodyKind.Length, 0, true);
      expect([f.kind, f.done]).to.deep.equal([BodyKind.None, true]);
      expect(f.feed(b('abc'), 0)).to.equal(0);
    });
    it('takes exactly Content-Length bytes, however split; the rest is the next message', () => {
      const r = sameEverywhere(BodyKind.Length, 5, true, b('hello GET / HTTP/1.1\r\n\r\n'));
      expect(r).to.deep.equal({ taken: 5, done: true, data: 5, error: '' });
    });
    it('is not done before Content-Length bytes arrived', () => {
      const r = sameEverywhere(BodyKind.Length, 10, true, b('hello'));
      expect(r).to.deep.equal({ taken: 5, done: false, data: 5, error: '' });
    });
    it('takes a body containing what looks like framing as data', () => {
      const body = '0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n';
      const r = sameEverywhere(BodyKind.Length, body.length, true, b(body + 'X'));
      expect([r.taken, r.done]).to.deep.equal([body.length, true]);
    });
    it('Content-Length counts from the start index', () =>
      expect(fromOffset(BodyKind.Length, 3, b('abcdef'))).to.equal(3));
    it('UntilClose takes everything and is never done', () => {
      const r = sameEverywhere(BodyKind.UntilClose, 0, false, b('HTTP/1.1 200 OK\r\n\r\nx'));
      expect(r).to.deep.equal({ taken: 20, done: false, data: 20, error: '' });
    });
  });

  describe('chunked: accepted framing', () => {
    const accepted: [string, string, number][] = [
      ['the last chunk only', '0\r\n\r\n', 0],
      ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 5],
      ['two chunks', '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n', 5],
      ['upper-case hex', 'A\r\n0123456789\r\n0\r\n\r\n', 10],
      ['lower-case hex', 'a\r\n0123456789\r\n0\r\n\r\n', 10],
      ['leading zeros', '0005\r\nhello\r\n000\r\n\r\n', 5],
      ['12 hex digits', '00000000000a\r\n0123456789\r\n0\r\n\r\n', 10],
      ['an extension', '5;name=value\r\nhello\r\n0\r\n\r\n', 5],
      ['an extension with a quoted string', '5;a="b;c"\r\nhello\r\n0;x\r\n\r\n', 5],
      ['whitespace before an extension', '5 \t;a=b\r\nhello\r\n0\r\n\r\n', 5],
      ['an extension on the last chunk', '0;last\r\n\r\n', 0],
      ['an empty extension', '5;\r\nhello\r\n0\r\n\r\n', 5],
      ['obs-text in an extension', '5;a=\xe9\r\nhello\r\n0\r\n\r\n', 5],
      ['a trailer field', '5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n', 5],
      ['two trailer fields', '0\r\nA: 1\r\nB:2\r\n\r\n', 0],
      ['an empty trailer value', '0\r\nA:\r\n\r\n', 0],
      ['chunk data with CR, LF and NUL', '6\r\n\r\n\x00\r\n0\r\n0\r\n\r\n', 6],
      ['data that looks like a last chunk', '5\r\n0\r\n\r\n\r\n0\r\n\r\n', 5],
    ];
    for (const [what, framing, data] of accepted)
      it(`${what}: ${show(framing)}`, () => {
        const next = 'GET /next HTTP/1.1\r\n\r\n';
        const r = sameEverywhere(BodyKind.Chunked, 0, true, b(framing + next));
        expect(r).to.deep.equal({ taken: framing.length, done: true, data, error: '' });
        expect(fromOffset(BodyKind.Chunked, 0, b(framing + next))).to.equal(framing.length);
      });

    it('is not done until the empty line after the last chunk', () => {
      for (const partial of ['5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\nA: 1\r\n', '5\r\nhel'])
        expect(sameEverywhere(BodyKind.Chunked, 0, true, b(partial)).done, partial).to.equal(false);
    });
  });

  describe('chunked: refused framing', () => {
    const refused: [string, string][] = [
      ['an empty chunk-size line', '\r\nhello\r\n0\r\n\r\n'],
      ['a size with a sign', '+5\r\nhello\r\n0\r\n\r\n'],
      ['a negative size', '-5\r\nhello\r\n0\r\n\r\n'],
      ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
      ['a non-hex digit', '5g\r\nhello\r\n0\r\n\r\n'],
      ['whitespace before the size', ' 5\r\nhello\r\n0\r\n\r\n'],
      ['whitespace after the size without an extension', '5 \r\nhello\r\n0\r\n\r\n'],
      ['13 hex digits (overflow)', '0000000000005\r\nhello\r\n0\r\n\r\n'],
      ['a size past 2^64 (overflow)', '10000000000000005\r\nhello\r\n0\r\n\r\n'],
      ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n'],
      ['a bare CR after the size', '5\rhello\r\n0\r\n\r\n'],
      ['a bare LF after the last chunk', '5\r\nhello\r\n0\n\r\n'],
      ['a bare LF ending the body', '5\r\nhello\r\n0\r\n\n'],
      ['a CR inside the size line', '5\r;a\r\nhello\r\n0\r\n\r\n'],
      ['a control char in an extension', '5;a=\x01\r\nhello\r\n0\r\n\r\n'],
      ['NUL in an extension', '5;\x00\r\nhello\r\n0\r\n\r\n'],
      ['DEL in an extension', '5;\x7f\r\nhello\r\n0\r\n\r\n'],
      ['chunk data longer than its size', '5\r\nhello!\r\n0\r\n\r\n'],
      ['chunk data shorter than its size', '5\r\nhell\r\n0\r\n\r\n'],
      ['chunk data followed by LF only', '5\r\nhello\n0\r\n\r\n'],
      ['chunk data followed by CR only', '5\r\nhello\r0\r\n\r\n'],
      ['a trailer without a colon', '0\r\nX-Sum 1\r\n\r\n'],
      ['a trailer with whitespace before the colon', '0\r\nX-Sum : 1\r\n\r\n'],
      ['a folded trailer', '0\r\nX-Sum: 1\r\n 2\r\n\r\n'],
      ['a trailer with an empty name', '0\r\n: 1\r\n\r\n'],
      ['a trailer with a control char', '0\r\nX: \x01\r\n\r\n'],
      ['a trailer with a bare CR', '0\r\nX: a\rb\r\n\r\n'],
      ['a trailer with a bare LF', '0\r\nX: 1\n\r\n'],
      ['an over-long chunk-size line', `5;${'a'.repeat(9000)}\r\nhello\r\n0\r\n\r\n`],
      ['an over-long trailer line', `0\r\nX: ${'a'.repeat(9000)}\r\n\r\n`],
    ];
    for (const [what, framing] of refused)
      it(`${what}: ${show(framing)}`, () => {
        const r = sameEverywhere(BodyKind.Chunked, 0, true, b(framing));
        expect(r.taken, `accepted (${r.taken} bytes, done ${r.done})`).to.equal(-1);
        expect(r.error).to.be.a('string').and.not.equal('');
      });
  });

  describe('chunked: the framing-overhead cap', () => {
    /** `n` chunks of `size` bytes each, then the last chunk. */
    const chunks = (n: number, size: number): Buffer => {
      const one = `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`;
      return b(one.repeat(n) + '0\r\n\r\n');
    };
    /** Bytes of framing per chunk of `size` data bytes: the size line and the data CRLF. */
    const perChunk = (size: number): number => size.toString(16).length + 2 + 2;

    it('refuses a body of many 1-byte chunks (requests)', () => {
      const n =
        Math.ceil(CHUNK_FREE_OVERHEAD / (perChunk(1) - 1 / CHUNK_DATA_PER_OVERHEAD_BYTE)) + 10;
      const r = feed(BodyKind.Chunked, 0, true, [chunks(n, 1)]);
      expect(r.taken).to.equal(-1);
      expect(r.error).to.match(/framing/);
      // The refusal comes once the free allowance is used up, not at the end of the body.
      expect(r.data).to.be.below(n);
    });
    it('lets the same body through when the cap is off (responses)', () => {
      const n = 10_000;
      const bytes = chunks(n, 1);
      const r = feed(BodyKind.Chunked, 0, false, [bytes]);
      expect(r).to.deep.equal({ taken: bytes.length, done: true, data: n, error: '' });
    });
    it('accepts many small chunks within the free allowance', () => {
      const n = Math.floor(CHUNK_FREE_OVERHEAD / perChunk(1)) - 10;
      const bytes = chunks(n, 1);
      expect(feed(BodyKind.Chunked, 0, true, [bytes]).done).to.equal(true);
    });
    it('accepts any number of chunks that carry enough data for their framing', () => {
      // 64-byte chunks: 6 bytes of framing per 64 bytes of data, under one per 4.
      const bytes = chunks(5_000, 64);
      const r = feed(BodyKind.Chunked, 0, true, [bytes]);
      expect([r.done, r.data]).to.deep.equal([true, 5_000 * 64]);
    });
    it('counts long extensions as framing', () => {
      const line = `1;${'e'.repeat(1000)}\r\nx\r\n`;
      const n = Math.ceil(CHUNK_FREE_OVERHEAD / line.length) + 2;
      const r = feed(BodyKind.Chunked, 0, true, [b(line.repeat(n) + '0\r\n\r\n')]);
      expect(r.taken).to.equal(-1);
    });
    it('counts trailers as framing', () => {
      const r = feed(BodyKind.Chunked, 0, true, [
        b('0\r\n' + 'X: 1234567890\r\n'.repeat(2000) + '\r\n'),
      ]);
      expect(r.taken).to.equal(-1);
    });
    it('gives the same decision however the bytes are split', () => {
      const n = Math.ceil(CHUNK_FREE_OVERHEAD / perChunk(1)) + 50;
      const bytes = chunks(n, 1);
      const whole = feed(BodyKind.Chunked, 0, true, [bytes]);
      const pieces: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += 7) pieces.push(bytes.subarray(i, i + 7));
      expect(feed(BodyKind.Chunked, 0, true, pieces)).to.deep.equal(whole);
    });
  });

  it('start() resets every state between messages', () => {
    const f = new BodyFramer();
    f.start(BodyKind.Chunked, 0, true);
    expect(f.feed(b('5\r\nhel'), 0)).to.equal(6);
    f.start(BodyKind.Chunked, 0, true);
    const next = b('3\r\nabc\r\n0\r\n\r\n');
    expect(f.feed(next, 0)).to.equal(next.length);
    expect([f.done, f.data, f.error]).to.deep.equal([true, 3, '']);
    f.start(BodyKind.Chunked, 0, true);
    expect(f.feed(b('zz\r\n'), 0)).to.equal(-1);
    f.start(BodyKind.Length, 2, true);
    expect([f.feed(b('abc'), 0), f.done, f.error]).to.deep.equal([2, true, '']);
  });
});
