/**
 * The pure request rules every HTTP front end of the proxy applies (one reading per request):
 * target normalization, canonical authority, header collection, HTTP/1.1 framing.
 */
import { expect } from 'chai';
import { canonicalAuthority } from '../../../src/proxy/http/authority.js';
import { CHUNK_FREE_OVERHEAD } from '../../../src/proxy/http/h1-body.js';
import {
  Http1FramingGuard,
  parseContentLength,
  requestLineProblem,
} from '../../../src/proxy/http/http1-framing.js';
import { collectRequestHeaders, isHeaderProblem } from '../../../src/proxy/http/request-headers.js';
import { normalizeTarget } from '../../../src/proxy/http/request-target.js';

describe('proxy/request rules', () => {
  describe('normalizeTarget', () => {
    const same: string[] = ['/', '/a', '/a/b/', '/a?x=//y', '/a.b/c', '/a%20b', '/a?q=%2f'];
    for (const t of same) it(`keeps ${t}`, () => expect(normalizeTarget(t)).to.equal(t));
    const rewritten: [string, string][] = [
      ['//admin', '/admin'],
      ['///a//b', '/a/b'],
      ['/a//b//', '/a/b/'],
      ['//', '/'],
      ['/public/../admin', '/admin'],
      ['/%2e%2e/admin', '/admin'],
      ['/%2E%2e//admin', '/admin'],
      ['/public/%2e%2e//admin', '/admin'],
      ['/a/./b/.', '/a/b/'],
      ['/a/..', '/'],
      ['/%61dmin', '/admin'],
      ['/a%2fb'.replace('%2f', '%7e'), '/a~b'],
      ['/x%3a', '/x%3A'],
      ['//admin?q=//x', '/admin?q=//x'],
      ['/.//admin', '/admin'],
    ];
    for (const [t, want] of rewritten)
      it(`reads ${t} as ${want}`, () => expect(normalizeTarget(t)).to.equal(want));
    const refused: string[] = [
      '*',
      'http://h/a',
      'a',
      '/a%00',
      '/%00/admin',
      '/a?x=%00',
      '/a%2fb',
      '/a%2Fb',
      '/a%5cb',
      '/a\\b',
      '/a%zz',
      '/a%4',
      '/admin#x',
      '/a b',
      '/a\tb',
      '/a\u0000',
      '/a\u007f',
      '/caf\u00e9',
      '',
    ];
    for (const t of refused)
      it(`refuses ${JSON.stringify(t)}`, () => expect(normalizeTarget(t)).to.equal(undefined));
  });

  describe('canonicalAuthority', () => {
    const cases: [string, string | undefined][] = [
      ['secret.svc', 'secret.svc'],
      ['Secret.SVC', 'secret.svc'],
      ['secret.svc.', 'secret.svc'],
      ['secret.svc:80', 'secret.svc'],
      ['SECRET.svc.:443', 'secret.svc'],
      ['secret.svc:', 'secret.svc'],
      ['secret.svc:8080', 'secret.svc:8080'],
      ['secret.svc:08080', 'secret.svc:8080'],
      ['secret.svc:080', 'secret.svc'],
      ['[::1]', '[::1]'],
      ['[0:0::1]:80', '[::1]'],
      ['[::FFFF:7f00:1]:8080', '[::ffff:7f00:1]:8080'],
      ['127.0.0.1:80', '127.0.0.1'],
      ['127.1', '127.0.0.1'],
      ['0x7f.0.0.1', '127.0.0.1'],
      ['my_host', 'my_host'],
      ['', undefined],
      ['secret.svc..', undefined],
      ['.secret', undefined],
      ['a b', undefined],
      ['user@secret.svc', undefined],
      ['secret.svc:99999', undefined],
      ['secret.svc:8o', undefined],
      ['secret.svc:80:80', undefined],
      ['::1', undefined],
      ['[::1', undefined],
      ['[::1]x', undefined],
      ['[fe80::1%eth0]', undefined],
      ['se%63ret.svc', undefined],
      ['foo.123', undefined],
    ];
    for (const [raw, want] of cases)
      it(`${JSON.stringify(raw)} -> ${String(want)}`, () =>
        expect(canonicalAuthority(raw)).to.equal(want));
  });

  describe('collectRequestHeaders', () => {
    it('keeps every field line of a repeated header, whatever the case of its name', () => {
      const r = collectRequestHeaders(
        ['X-Check', 'good', 'x-check', 'bad', 'X-CHECK', 'a, b', 'Host', 'api'],
        false,
      );
      expect(r).to.deep.equal({ headers: { 'x-check': ['good', 'bad', 'a, b'] }, host: 'api' });
    });
    it('drops hop-by-hop fields, those Connection lists, and client-sent XFCC', () => {
      const r = collectRequestHeaders(
        [
          'Connection',
          'x-secret, keep-alive',
          'X-Secret',
          's',
          'Keep-Alive',
          '5',
          'TE',
          'trailers',
          'X-Forwarded-Client-Cert',
          'By=evil',
          'x-ok',
          '1',
        ],
        false,
      );
      expect(r).to.deep.equal({ headers: { te: 'trailers', 'x-ok': '1' }, host: undefined });
    });
    it('joins cookies into one line (HTTP/2 splits them)', () => {
      const r = collectRequestHeaders(['cookie', 'a=1', 'cookie', 'b=2'], true);
      expect(r).to.deep.equal({ headers: { cookie: 'a=1; b=2' }, host: undefined });
    });
    const refused: [string, string[], boolean, boolean][] = [
      ['an underscore name', ['x_check', 'a'], false, false],
      ['an underscore name over HTTP/2', ['x_check', 'a'], true, false],
      ['two Host lines', ['host', 'a', 'Host', 'b'], false, false],
      ['two Authorization lines', ['authorization', 'a', 'Authorization', 'b'], false, false],
      ['two Content-Type lines', ['content-type', 'a', 'content-type', 'b'], true, false],
      [
        'two different Content-Lengths',
        ['content-length', '1', 'content-length', '2'],
        false,
        false,
      ],
      ['an upper-case name over HTTP/2', ['X-Check', 'a'], true, true],
      ['a space in a name over HTTP/2', ['x check', 'a'], true, true],
      ['a colon in a name over HTTP/2', ['x:check', 'a'], true, true],
      ['CR in a value over HTTP/2', ['x-check', 'a\rb'], true, true],
      ['LF in a value over HTTP/2', ['x-check', 'a\nb'], true, true],
      ['NUL in a value over HTTP/2', ['x-check', 'a\u0000b'], true, true],
      ['a leading space in a value over HTTP/2', ['x-check', ' a'], true, true],
      ['a trailing tab in a value over HTTP/2', ['x-check', 'a\t'], true, true],
    ];
    for (const [what, raw, h2, malformed] of refused)
      it(`refuses ${what}${malformed ? ' as malformed' : ''}`, () => {
        const r = collectRequestHeaders(raw, h2);
        expect(isHeaderProblem(r), JSON.stringify(r)).to.equal(true);
        if (isHeaderProblem(r)) expect(r.malformed).to.equal(malformed);
      });
  });

  describe('HTTP/1.1 request lines and Content-Length', () => {
    const good = ['GET / HTTP/1.1', 'POST /a?b HTTP/1.0', 'M-SEARCH * HTTP/1.1'];
    for (const l of good)
      it(`accepts ${l}`, () => expect(requestLineProblem(l)).to.equal(undefined));
    const bad = [
      'GET  /path HTTP/1.1',
      'GET /path  HTTP/1.1',
      'GET\t/path HTTP/1.1',
      ' GET /path HTTP/1.1',
      'GET /path HTTP/1.1 ',
      'GET /path',
      'GET /path HTTP/2.0',
      'GET /path HTTP/0.9',
      'GET /path HTTP/1.2',
      'GET /path http/1.1',
      'GET /a b HTTP/1.1',
      '',
    ];
    for (const l of bad)
      it(`refuses ${JSON.stringify(l)}`, () => expect(requestLineProblem(l)).to.be.a('string'));
    const lengths: [string, number | undefined][] = [
      ['0', 0],
      ['12', 12],
      [' 12 ', 12],
      ['007', 7],
      ['999999999999999', 999999999999999],
      ['12345678901234567890', undefined],
      ['9007199254740993', undefined],
      ['+3', undefined],
      ['-3', undefined],
      ['3 3', undefined],
      ['3,3', undefined],
      ['0x3', undefined],
      ['', undefined],
    ];
    for (const [v, want] of lengths)
      it(`Content-Length ${JSON.stringify(v)} -> ${String(want)}`, () =>
        expect(parseContentLength(v)).to.equal(want));
  });

  describe('Http1FramingGuard', () => {
    const feedAll = (pieces: (string | Buffer)[]): string | undefined => {
      const g = new Http1FramingGuard();
      for (const p of pieces) {
        const r = g.feed(Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1'));
        if (r) return r;
      }
      return undefined;
    };
    const oneByteAtATime = (s: string): string[] => s.split('');

    it('follows pipelined requests with bodies, whole and one byte at a time', () => {
      const wire =
        'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nGET  /x' +
        'POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '3;ext=1\r\nGET\r\n4\r\n /x \r\n0\r\nX-Trailer: 1\r\n\r\n' +
        '\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n';
      expect(feedAll([wire])).to.equal(undefined);
      expect(feedAll(oneByteAtATime(wire))).to.equal(undefined);
    });

    it('finds a bad request line after a body, however the bytes are split', () => {
      const wire =
        'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' +
        'GET  /admin HTTP/1.1\r\nHost: a\r\n\r\n';
      expect(feedAll([wire])).to.be.a('string');
      expect(feedAll(oneByteAtATime(wire))).to.be.a('string');
      expect(feedAll([wire.slice(0, 60), wire.slice(60)])).to.be.a('string');
    });

    it('refuses an oversized or signed Content-Length', () => {
      for (const v of ['12345678901234567890', '+5', '-1', '1 1'])
        expect(feedAll([`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${v}\r\n\r\n`])).to.be.a(
          'string',
        );
    });

    it('lets a chunked body carry its data in small chunks, up to the overhead cap', () => {
      const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
      // 64-byte chunks: 6 bytes of framing per chunk, far under a quarter of the data.
      const fair = head + `40\r\n${'x'.repeat(64)}\r\n`.repeat(20_000) + '0\r\n\r\n';
      expect(feedAll([fair])).to.equal(undefined);
      // 1-byte chunks: 5 bytes of framing per byte of data.
      const chunks = Math.ceil(CHUNK_FREE_OVERHEAD / 4);
      const flood = head + '1\r\nx\r\n'.repeat(chunks) + '0\r\n\r\n';
      expect(feedAll([flood])).to.match(/chunk framing/);
    });

    it('stops following a connection that tunnels (refused elsewhere)', () => {
      const wire = 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\nGET  / HTTP/1.1\r\n\r\n';
      expect(feedAll([wire])).to.equal(undefined);
    });
  });
});
