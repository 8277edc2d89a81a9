/**
 * The strict HTTP/1.1 head parser (src/proxy/http/h1-parse.ts), one vector per rule in its
 * header comment: what is accepted (and how it is read) and what is refused (400 or 431).
 * Heads are given as the parser gets them: the bytes before the final CRLFCRLF, latin1.
 */
import { expect } from 'chai';
import {
  NO_LENGTH,
  isHeadError,
  parseRequestHead,
  type H1HeadError,
  type H1RequestHead,
} from '../../../src/proxy/http/h1-parse.js';
import {
  parseResponseHead,
  type H1ResponseHead,
} from '../../../src/proxy/http/h1-response-head.js';
import { MAX_HEADER_COUNT } from '../../../src/proxy/http/limits.js';

const req = (lines: string[]): H1RequestHead | H1HeadError => parseRequestHead(lines.join('\r\n'));
const res = (lines: string[]): H1ResponseHead | H1HeadError =>
  parseResponseHead(lines.join('\r\n'));

function ok<T extends object>(r: T | H1HeadError): T {
  if (isHeadError(r)) throw new Error(`refused: ${r.status} ${r.message}`);
  return r;
}
function refused(r: object, status: 400 | 431 = 400): H1HeadError {
  expect(isHeadError(r), `accepted: ${JSON.stringify(r)}`).to.equal(true);
  const e = r as H1HeadError;
  expect(e.status).to.equal(status);
  expect(e.message).to.be.a('string').and.not.equal('');
  return e;
}

/** Printable form of a vector for test titles. */
const show = (s: string): string => JSON.stringify(s).slice(1, -1);

describe('proxy/h1-parse', () => {
  describe('request line', () => {
    const accepted: [string, string, string, number][] = [
      ['GET / HTTP/1.1', 'GET', '/', 1],
      ['GET / HTTP/1.0', 'GET', '/', 0],
      ['POST /a/b?c=d&e=%20 HTTP/1.1', 'POST', '/a/b?c=d&e=%20', 1],
      ['OPTIONS * HTTP/1.1', 'OPTIONS', '*', 1],
      ['M-SEARCH * HTTP/1.1', 'M-SEARCH', '*', 1],
      ["X!#$%&'*+.^_`|~9 / HTTP/1.1", "X!#$%&'*+.^_`|~9", '/', 1],
      ['GET http://a.example/x HTTP/1.1', 'GET', 'http://a.example/x', 1],
      ['get / HTTP/1.1', 'get', '/', 1],
    ];
    for (const [line, method, target, minor] of accepted)
      it(`reads ${show(line)}`, () => {
        const h = ok(req([line, 'Host: a']));
        expect([h.method, h.target, h.minor]).to.deep.equal([method, target, minor]);
      });

    const bad: string[] = [
      '',
      'GET',
      'GET /',
      'GET / ',
      'GET  / HTTP/1.1',
      'GET /  HTTP/1.1',
      ' GET / HTTP/1.1',
      'GET / HTTP/1.1 ',
      'GET\t/ HTTP/1.1',
      'GET /\tHTTP/1.1',
      'GET / HTTP/1.2',
      'GET / HTTP/2.0',
      'GET / HTTP/0.9',
      'GET / HTTP/1',
      'GET / HTTP/1.1x',
      'GET / http/1.1',
      'GET / HTTP/11',
      'GET /a b HTTP/1.1',
      'GET /\x00 HTTP/1.1',
      'GET /\x7f HTTP/1.1',
      'GET /\x80 HTTP/1.1',
      'GET /\r HTTP/1.1',
      'GET / HTTP/1.1\r',
      'GET / HTTP/1.1\n',
      'GET / HTTP/1.1\nHost: a',
      'G(T / HTTP/1.1',
      'G@T / HTTP/1.1',
      'GE\x00T / HTTP/1.1',
      'GET / HTTP/1.1\x00',
    ];
    for (const line of bad) it(`refuses ${show(line)}`, () => refused(req([line])));

    it('skips empty lines before the request line (RFC 9112 2.2)', () => {
      const h = ok(parseRequestHead('\r\n\r\nGET /x HTTP/1.1\r\nHost: a'));
      expect(h.target).to.equal('/x');
    });
    it('refuses a bare LF before the request line', () =>
      refused(parseRequestHead('\nGET / HTTP/1.1\r\nHost: a')));
  });

  describe('field lines', () => {
    it('keeps field lines as received, values trimmed of OWS', () => {
      const h = ok(
        req(['GET / HTTP/1.1', 'Host: a', 'X-A:  v 1 \t', 'x-a:v2', 'X-Empty:', 'X-B:\t ']),
      );
      expect(h.rawHeaders).to.deep.equal([
        'Host',
        'a',
        'X-A',
        'v 1',
        'x-a',
        'v2',
        'X-Empty',
        '',
        'X-B',
        '',
      ]);
    });
    it('accepts obs-text (0x80-0xff) and HTAB inside a value', () => {
      const h = ok(req(['GET / HTTP/1.1', 'X-A: a\tb\xff\x80']));
      expect(h.rawHeaders[1]).to.equal('a\tb\xff\x80');
    });
    it("accepts '_' in a name (the header collector, not the parser, refuses it)", () => {
      expect(ok(req(['GET / HTTP/1.1', 'X_A: 1'])).rawHeaders[0]).to.equal('X_A');
    });
    it('accepts a colon inside a value', () => {
      expect(ok(req(['GET / HTTP/1.1', 'X: a:b: c'])).rawHeaders[1]).to.equal('a:b: c');
    });

    const bad: [string, string][] = [
      ['obs-fold (SP)', 'X-A: 1\r\n 2'],
      ['obs-fold (HTAB)', 'X-A: 1\r\n\t2'],
      ['a line starting with SP', ' X-A: 1'],
      ['whitespace before the colon (SP)', 'X-A : 1'],
      ['whitespace before the colon (HTAB)', 'X-A\t: 1'],
      ['no colon', 'X-A 1'],
      ['an empty name', ': 1'],
      ['a name with a space', 'X A: 1'],
      ['a name with a separator', 'X(A): 1'],
      ['a name with "@"', 'X@A: 1'],
      ['a name with NUL', 'X\x00A: 1'],
      ['a name with obs-text', 'X\xe9: 1'],
      ['a bare CR in a value', 'X-A: 1\r2'],
      ['a bare CR at the end of a value', 'X-A: 1\r'],
      ['a bare LF in a value', 'X-A: 1\n2'],
      ['a bare LF ending a field line', 'X-A: 1\nX-B: 2'],
      ['NUL in a value', 'X-A: 1\x002'],
      ['DEL in a value', 'X-A: 1\x7f'],
      ['a control char in a value', 'X-A: \x01'],
      ['vertical tab in a value', 'X-A: a\x0bb'],
      ['form feed in a value', 'X-A: a\x0cb'],
      ['an empty line inside the head', 'X-A: 1\r\n\r\nX-B: 2'],
    ];
    for (const [what, line] of bad)
      it(`refuses ${what}`, () => {
        refused(req(['GET / HTTP/1.1', 'Host: a', line]));
        refused(res(['HTTP/1.1 200 OK', line]));
      });

    it(`allows ${MAX_HEADER_COUNT} fields and answers 431 past that`, () => {
      const fields = (n: number): string[] => Array.from({ length: n }, (_, i) => `X-${i}: v`);
      ok(req(['GET / HTTP/1.1', ...fields(MAX_HEADER_COUNT)]));
      refused(req(['GET / HTTP/1.1', ...fields(MAX_HEADER_COUNT + 1)]), 431);
    });

    it('counts Host lines and keeps the first value', () => {
      const h = ok(req(['GET / HTTP/1.1', 'host: a', 'HOST: b']));
      expect([h.host, h.hostCount]).to.deep.equal(['a', 2]);
      const none = ok(req(['GET / HTTP/1.1']));
      expect([none.host, none.hostCount]).to.deep.equal([undefined, 0]);
    });
    it('sees Upgrade and a gRPC Content-Type', () => {
      expect(ok(req(['GET / HTTP/1.1', 'Upgrade: websocket'])).upgrade).to.equal(true);
      expect(ok(req(['GET / HTTP/1.1', 'Content-Type: application/grpc+proto'])).grpc).to.equal(
        true,
      );
      expect(ok(req(['GET / HTTP/1.1', 'Content-Type: text/plain'])).grpc).to.equal(false);
    });
  });

  describe('Content-Length', () => {
    const accepted: [string[], number][] = [
      [['Content-Length: 0'], 0],
      [['Content-Length: 5'], 5],
      [['content-length:5'], 5],
      [['CONTENT-LENGTH: \t12 \t'], 12],
      [['Content-Length: 007'], 7],
      [['Content-Length: 999999999999999'], 999999999999999],
      [['Content-Length: 5', 'Content-Length: 5'], 5],
      [['Content-Length: 5', 'content-length: 05'], 5],
    ];
    for (const [lines, n] of accepted)
      it(`reads ${show(lines.join(' | '))} as ${n}`, () => {
        expect(ok(req(['POST / HTTP/1.1', ...lines])).contentLength).to.equal(n);
        expect(ok(res(['HTTP/1.1 200 OK', ...lines])).contentLength).to.equal(n);
      });
    it('is NO_LENGTH when absent', () => {
      expect(ok(req(['GET / HTTP/1.1'])).contentLength).to.equal(NO_LENGTH);
      expect(ok(res(['HTTP/1.1 200 OK'])).contentLength).to.equal(NO_LENGTH);
    });

    const bad: string[][] = [
      ['Content-Length:'],
      ['Content-Length: '],
      ['Content-Length: -1'],
      ['Content-Length: +5'],
      ['Content-Length: 5 5'],
      ['Content-Length: 5,5'],
      ['Content-Length: 5, 5'],
      ['Content-Length: 0x5'],
      ['Content-Length: 5.0'],
      ['Content-Length: 1e3'],
      ['Content-Length: five'],
      ['Content-Length: 5a'],
      ['Content-Length: \uff15'.replace('\uff15', '\xb5')],
      ['Content-Length: 1000000000000000'],
      ['Content-Length: 99999999999999999999'],
      ['Content-Length: 5', 'Content-Length: 6'],
      ['Content-Length: 0', 'Content-Length: 1'],
      ['Content-Length: 5', 'Transfer-Encoding: chunked'],
      ['Transfer-Encoding: chunked', 'Content-Length: 5'],
      ['Transfer-Encoding: chunked', 'Content-Length: 0'],
    ];
    for (const lines of bad)
      it(`refuses ${show(lines.join(' | '))}`, () => {
        refused(req(['POST / HTTP/1.1', ...lines]));
        refused(res(['HTTP/1.1 200 OK', ...lines]));
      });
  });

  describe('Transfer-Encoding', () => {
    const accepted: string[] = [
      'Transfer-Encoding: chunked',
      'transfer-encoding: CHUNKED',
      'Transfer-Encoding:Chunked',
      'Transfer-Encoding: \tchunked\t ',
    ];
    for (const line of accepted)
      it(`reads ${show(line)} as chunked`, () => {
        const h = ok(req(['POST / HTTP/1.1', line]));
        expect([h.chunked, h.contentLength]).to.deep.equal([true, NO_LENGTH]);
        expect(ok(res(['HTTP/1.1 200 OK', line])).chunked).to.equal(true);
      });

    const bad: string[][] = [
      ['Transfer-Encoding: gzip'],
      ['Transfer-Encoding: identity'],
      ['Transfer-Encoding: gzip, chunked'],
      ['Transfer-Encoding: chunked, chunked'],
      ['Transfer-Encoding: chunked,'],
      ['Transfer-Encoding: chunked;q=1'],
      ['Transfer-Encoding: "chunked"'],
      ['Transfer-Encoding: chunked\x00'],
      ['Transfer-Encoding: chunk'],
      ['Transfer-Encoding: xchunked'],
      ['Transfer-Encoding:'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
      ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: gzip'],
      ['Transfer-Encoding : chunked'],
      ['Transfer-Encoding\t: chunked'],
      [' Transfer-Encoding: chunked'],
      ['Transfer-Encoding: x', ' chunked'],
      ['Transfer_Encoding: chunked', 'Content-Length: 1', 'Transfer-Encoding: chunked'],
    ];
    for (const lines of bad)
      it(`refuses ${show(lines.join(' | '))}`, () => {
        refused(req(['POST / HTTP/1.1', ...lines]));
        refused(res(['HTTP/1.1 200 OK', ...lines]));
      });

    it("does not read 'Transfer_Encoding' as Transfer-Encoding", () => {
      const h = ok(req(['POST / HTTP/1.1', 'Transfer_Encoding: chunked']));
      expect(h.chunked).to.equal(false);
    });
  });

  describe('connection persistence', () => {
    const cases: [string, string[], boolean][] = [
      ['HTTP/1.1 keeps the connection', ['GET / HTTP/1.1'], false],
      ['HTTP/1.1 with close', ['GET / HTTP/1.1', 'Connection: close'], true],
      ['close in a list', ['GET / HTTP/1.1', 'Connection: foo, Close'], true],
      ['close in a later line', ['GET / HTTP/1.1', 'Connection: x', 'Connection: close'], true],
      ['a token that only contains close', ['GET / HTTP/1.1', 'Connection: closed'], false],
      ['HTTP/1.0 closes', ['GET / HTTP/1.0'], true],
      ['HTTP/1.0 with keep-alive', ['GET / HTTP/1.0', 'Connection: Keep-Alive'], false],
      [
        'HTTP/1.0 with keep-alive in a list',
        ['GET / HTTP/1.0', 'Connection: a, keep-alive'],
        false,
      ],
      [
        'HTTP/1.0 with keep-alive and close',
        ['GET / HTTP/1.0', 'Connection: keep-alive, close'],
        true,
      ],
    ];
    for (const [what, lines, close] of cases)
      it(what, () => {
        expect(ok(req(lines)).close).to.equal(close);
        const status = lines[0]!.replace(/^GET \/ (HTTP\/1\.[01])$/, '$1 200 OK');
        expect(ok(res([status, ...lines.slice(1)])).close).to.equal(close);
      });
  });

  describe('status line', () => {
    const accepted: [string, number, string, number][] = [
      ['HTTP/1.1 200 OK', 200, 'OK', 1],
      ['HTTP/1.0 404 Not Found', 404, 'Not Found', 0],
      ['HTTP/1.1 204', 204, '', 1],
      ['HTTP/1.1 204 ', 204, '', 1],
      ['HTTP/1.1 100 Continue', 100, 'Continue', 1],
      ['HTTP/1.1 103 Early Hints', 103, 'Early Hints', 1],
      ['HTTP/1.1 599 x\ty\xe9', 599, 'x\ty\xe9', 1],
      ['HTTP/1.1 200 a  b ', 200, 'a  b ', 1],
    ];
    for (const [line, status, reason, minor] of accepted)
      it(`reads ${show(line)}`, () => {
        const h = ok(res([line]));
        expect([h.status, h.reasonPhrase, h.minor]).to.deep.equal([status, reason, minor]);
      });

    const bad: string[] = [
      '',
      'HTTP/1.1',
      'HTTP/1.1 ',
      'HTTP/1.1 20',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1 099 x',
      'HTTP/1.1 abc OK',
      'HTTP/1.1  200 OK',
      ' HTTP/1.1 200 OK',
      'HTTP/1.1\t200 OK',
      'HTTP/1.1 200\tOK',
      'HTTP/1.2 200 OK',
      'HTTP/2 200 OK',
      'HTTP/2.0 200 OK',
      'http/1.1 200 OK',
      'ICY 200 OK',
      'HTTP/1.1 200 O\rK',
      'HTTP/1.1 200 O\nK',
      'HTTP/1.1 200 O\x00K',
      'HTTP/1.1 200 O\x7fK',
    ];
    for (const line of bad) it(`refuses ${show(line)}`, () => refused(res([line])));
  });
});
