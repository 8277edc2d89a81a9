/**
 * The request head as the proxy writes it for the next hop (writeRequestHead): the request
 * line as received or with the normalized target, host from the canonical authority, the kept
 * lines as received, hop-by-hop, listed and client-sent identity fields dropped, cookies joined,
 * the proxy's XFCC line and the framing written from the parsed head, the body's first bytes
 * after it in the same buffer.
 *
 * Then a differential test over seeded random heads: the byte-level parser (parseRequestBytes)
 * must accept and refuse exactly as the string parser it replaced (h1-request-reference.ts),
 * with the same fields and message; its `problem` must be exactly what collectRequestHeaders
 * refuses; and the head it writes must carry exactly the fields the rules are given
 * (forwardedRequestHeaders), which are those the string-built head carried before.
 */
import { expect } from 'chai';
import { xfccField } from '../../../src/proxy/http/headers.js';
import {
  isHeadError,
  parseRequestBytes,
  parseRequestHead,
  type H1RequestHead,
  type RequestHeadBytes,
} from '../../../src/proxy/http/h1-parse.js';
import { writeRequestHead } from '../../../src/proxy/http/h1-request-write.js';
import { prepareH1Head, isHeadProblem } from '../../../src/proxy/http/request-head.js';
import {
  collectRequestHeaders,
  forwardedRequestHeaders,
  isHeaderProblem,
} from '../../../src/proxy/http/request-headers.js';
import { rng } from '../../helpers/rng.js';
import { referenceHeadText, referenceParse } from './h1-request-reference.js';

/** Parses `lines` (with `before` junk bytes ahead, as in a read that held more). */
function head(lines: string[], before = ''): RequestHeadBytes {
  const text = `${before}${lines.join('\r\n')}\r\n\r\n`;
  const buf = Buffer.from(text, 'latin1');
  const r = parseRequestBytes(buf, before.length, buf.length - 4);
  if (isHeadError(r)) throw new Error(`refused: ${r.message}`);
  return r;
}

const written = (
  h: RequestHeadBytes,
  path = h.target,
  authority = h.host ?? 'fallback',
  added?: string,
  body?: string,
): string =>
  writeRequestHead(
    h,
    path,
    authority,
    added === undefined ? undefined : xfccField(added).line,
    body === undefined ? undefined : Buffer.from(body, 'latin1'),
  ).toString('latin1');

describe('proxy/h1-request-write writeRequestHead', () => {
  it('keeps end-to-end lines as received, host first, framing written once', () => {
    const h = head(
      [
        'POST /up?x=1 HTTP/1.1',
        'User-Agent: t/1',
        'Host: api.svc:8080',
        'Content-Length: 5',
        'X-A: v',
        'Content-Length: 5',
        'Accept: */*',
      ],
      'junk',
    );
    expect(written(h, '/up?x=1', 'api.svc:8080', undefined, 'hello')).to.equal(
      'POST /up?x=1 HTTP/1.1\r\nhost: api.svc:8080\r\nUser-Agent: t/1\r\nX-A: v\r\n' +
        'Accept: */*\r\ncontent-length: 5\r\n\r\nhello',
    );
  });

  it('drops every hop-by-hop field and a client-sent XFCC, and adds the proxy XFCC', () => {
    const h = head([
      'POST / HTTP/1.1',
      'Host: a',
      'Keep-Alive: timeout=5',
      'Connection: keep-alive',
      'Proxy-Connection: close',
      'Proxy-Authorization: Basic x',
      'Proxy-Authenticate: Basic',
      'Trailer: x',
      'HTTP2-Settings: AAA',
      'X-Forwarded-Client-Cert: By=evil',
      'TE: gzip',
      'Transfer-Encoding: chunked',
      'X-Kept: 1',
    ]);
    expect(written(h, '/', 'a', 'By=spiffe://d/api;URI=spiffe://d/web')).to.equal(
      'POST / HTTP/1.1\r\nhost: a\r\nX-Kept: 1\r\n' +
        'x-forwarded-client-cert: By=spiffe://d/api;URI=spiffe://d/web\r\n' +
        'transfer-encoding: chunked\r\n\r\n',
    );
  });

  it('keeps one `TE: trailers` (gRPC), unless Connection lists TE', () => {
    const h = head(['POST / HTTP/1.1', 'Host: a', 'te: trailers', 'TE: trailers', 'X: 1']);
    expect(written(h)).to.equal('POST / HTTP/1.1\r\nhost: a\r\nte: trailers\r\nX: 1\r\n\r\n');
    const listed = head(['POST / HTTP/1.1', 'Host: a', 'Connection: TE', 'TE: trailers']);
    expect(written(listed)).to.equal('POST / HTTP/1.1\r\nhost: a\r\n\r\n');
  });

  it('drops the fields Connection lists, but never the framing', () => {
    const h = head([
      'POST /a HTTP/1.1',
      'Host: a',
      'Connection: X-Secret, content-length, close',
      'x-secret: 1',
      'X-SECRET: 2',
      'Content-Length: 2',
      'close: 3',
      'X-Open: 2',
    ]);
    expect(h.close).to.equal(true);
    expect(written(h, '/a', 'a', undefined, 'ok')).to.equal(
      'POST /a HTTP/1.1\r\nhost: a\r\nX-Open: 2\r\ncontent-length: 2\r\n\r\nok',
    );
  });

  it('joins several Cookie lines into one, and forwards a single one where it was', () => {
    const many = head(['GET / HTTP/1.1', 'Cookie: a=1', 'Host: a', 'cookie: b=2', 'X: y']);
    expect(written(many)).to.equal('GET / HTTP/1.1\r\nhost: a\r\nX: y\r\ncookie: a=1; b=2\r\n\r\n');
    const one = head(['GET / HTTP/1.1', 'Cookie: a=1', 'Host: a', 'X: y']);
    expect(written(one)).to.equal('GET / HTTP/1.1\r\nhost: a\r\nCookie: a=1\r\nX: y\r\n\r\n');
    const listed = head(['GET / HTTP/1.1', 'Connection: cookie', 'Cookie: a=1', 'Cookie: b=2']);
    expect(written(listed, '/', 'a')).to.equal('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
  });

  it('writes the normalized target and the canonical authority, not what was received', () => {
    const h = head(['GET //admin/./x/../y?q=%2e HTTP/1.1', 'Host: API.svc.:80', 'X: 1']);
    const p = prepareH1Head(h, undefined);
    if (isHeadProblem(p)) throw new Error(p.message);
    expect([p.target, p.authority]).to.deep.equal(['/admin/y?q=%2e', 'api.svc']);
    expect(written(h, p.target, p.authority)).to.equal(
      'GET /admin/y?q=%2e HTTP/1.1\r\nhost: api.svc\r\nX: 1\r\n\r\n',
    );
  });

  it('keeps an HTTP/1.0 request line and keeps the pooled connection open', () => {
    const h = head(['GET /x HTTP/1.0', 'Connection: keep-alive', 'A: b']);
    expect(written(h, '/x', 'dest')).to.equal(
      'GET /x HTTP/1.0\r\nhost: dest\r\nA: b\r\nconnection: keep-alive\r\n\r\n',
    );
    expect(written(h, '/y', 'dest')).to.equal(
      'GET /y HTTP/1.0\r\nhost: dest\r\nA: b\r\nconnection: keep-alive\r\n\r\n',
    );
  });

  it('forwards a value without the whitespace after it (the value the rules judged)', () => {
    const h = head(['GET / HTTP/1.1', 'Host: a', 'X-A:  good \t', 'X-B:\tv', 'X-C:   ', 'X-D: e']);
    expect(written(h)).to.equal(
      'GET / HTTP/1.1\r\nhost: a\r\nX-A:  good\r\nX-B:\tv\r\nX-C:   \r\nX-D: e\r\n\r\n',
    );
    const listed = head(['GET / HTTP/1.1', 'Host: a', 'Connection: x', 'X-A: good  ', 'X: 1']);
    expect(written(listed)).to.equal('GET / HTTP/1.1\r\nhost: a\r\nX-A: good\r\n\r\n');
  });

  it('writes heads without fields, long lengths, and a large first body piece', () => {
    expect(written(head(['GET / HTTP/1.1']), '/', 'd')).to.equal(
      'GET / HTTP/1.1\r\nhost: d\r\n\r\n',
    );
    const long = head(['PUT /p HTTP/1.1', 'Host: a', 'content-length: 123456789012345']);
    expect(written(long)).to.equal(
      'PUT /p HTTP/1.1\r\nhost: a\r\ncontent-length: 123456789012345\r\n\r\n',
    );
    const body = 'x'.repeat(100_000);
    const h = head(['PUT /p HTTP/1.1', 'Host: a', `Content-Length: ${body.length}`]);
    expect(written(h, '/p', 'a', undefined, body)).to.equal(
      `PUT /p HTTP/1.1\r\nhost: a\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
  });

  it('finds what the header collector refuses, with its message', () => {
    const cases: [string[], string][] = [
      [['Host: a', 'host: b'], 'more than one Host header'],
      [['Host: a', 'X_A: 1'], `header "X_A": '_' in a header name`],
      [['Host: a', 'Authorization: a', 'authorization: b'], 'more than one authorization header'],
      [
        ['Host: a', 'Content-Length: 5', 'content-length: 05'],
        'more than one content-length header',
      ],
      // The first problem in line order wins: here the '_' comes before the second Host.
      [['Host: a', 'User-Agent: a', 'X_B: 1', 'Host: b'], `header "X_B": '_' in a header name`],
      [['Host: a', 'User-Agent: a', 'user-agent: b', 'X_B: 1'], 'more than one user-agent header'],
    ];
    for (const [fields, message] of cases) {
      const h = head(['POST / HTTP/1.1', ...fields]);
      expect(h.problem, fields.join(' | ')).to.equal(message);
      const c = collectRequestHeaders(h.rawHeaders, false);
      expect(isHeaderProblem(c) ? c.message : undefined).to.equal(message);
    }
    expect(head(['GET / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Content-Length: 5']).problem).to
      .be.undefined;
  });

  it("reads a 'constructor' field as a field like any other (no prototype property)", () => {
    const h = head(['GET / HTTP/1.1', 'Host: a', 'constructor: x', 'toString: y']);
    expect(forwardedRequestHeaders(h.rawHeaders).headers).to.deep.equal({
      constructor: 'x',
      tostring: 'y',
    });
    expect(written(h)).to.equal(
      'GET / HTTP/1.1\r\nhost: a\r\nconstructor: x\r\ntoString: y\r\n\r\n',
    );
  });
});

// ---- differential: the byte path against the string path it replaced ------------------------

const NAMES = [
  'Host',
  'host',
  'HOST',
  'Content-Length',
  'content-length',
  'Transfer-Encoding',
  'Connection',
  'connection',
  'Keep-Alive',
  'TE',
  'te',
  'Trailer',
  'Upgrade',
  'Proxy-Connection',
  'Proxy-Authorization',
  'HTTP2-Settings',
  'X-Forwarded-Client-Cert',
  'x-forwarded-client-cert',
  'Cookie',
  'cookie',
  'Content-Type',
  'Authorization',
  'User-Agent',
  'Referer',
  'From',
  'Max-Forwards',
  'If-Modified-Since',
  'If-Unmodified-Since',
  'X-Check',
  'x-check',
  'X-A',
  'X_A',
  'Accept',
  'close',
  'constructor',
  '__proto__',
  'Transfer_Encoding',
  'Set-Cookie',
];

const VALUES = [
  'a',
  'api.svc',
  'API.svc:80',
  '0',
  '5',
  '05',
  'chunked',
  'CHUNKED',
  'gzip',
  'close',
  'keep-alive',
  'Keep-Alive',
  'x-check, close',
  'X-A,  cookie',
  'te',
  'trailers',
  'Trailers',
  'application/grpc',
  'a=1',
  'b=2; c=3',
  '',
  ' padded \t',
  '\xa0x-a',
  'x-check',
  'v1, v2',
  '\xe9t\xe9',
];

const TARGETS = ['/', '/a/b?c=d', '//admin', '/x/../y', '/%2e%2e/z', '/a%2fb', '*', 'http://h/'];
const METHODS = ['GET', 'POST', 'PUT', 'get', 'M-SEARCH', 'CONNECT'];

/** A random head (text before its CRLFCRLF) built from the pools above. */
function randomHead(next: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[next() % a.length]!;
  const minor = next() % 5 === 0 ? '0' : '1';
  const lines = [`${pick(METHODS)} ${pick(TARGETS)} HTTP/1.${minor}`];
  const n = next() % 9;
  for (let i = 0; i < n; i++) {
    const sep = pick([': ', ':', ':\t', ':  ']);
    lines.push(`${pick(NAMES)}${sep}${pick(VALUES)}${pick(['', '', ' ', '\t '])}`);
  }
  return lines.join('\r\n');
}

/** The fields of a written head, by lower-case name, each with its values in order. */
function fieldsOf(text: string): Record<string, string[]> {
  const h = parseRequestHead(text.slice(0, text.indexOf('\r\n\r\n')));
  if (isHeadError(h))
    throw new Error(`written head refused: ${h.message}: ${JSON.stringify(text)}`);
  const out: Record<string, string[]> = {};
  const raw = h.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    (Object.hasOwn(out, k) ? out[k]! : (out[k] = [])).push(raw[i + 1]!);
  }
  return out;
}

/** The parse result's fields both parsers must agree on. */
const summary = (h: H1RequestHead): unknown[] => [
  h.method,
  h.target,
  h.minor,
  h.rawHeaders,
  h.contentLength,
  h.chunked,
  h.close,
  h.upgrade,
  h.host,
  h.hostCount,
  h.grpc,
];

describe('proxy/h1-request-write: the byte path against the string path it replaced', () => {
  const ITERATIONS = 20_000;
  const SEED = 0x5eed12;

  it(`${ITERATIONS} random heads: same parse, same refusals, same fields forwarded and judged`, () => {
    const next = rng(SEED);
    let accepted = 0;
    let forwarded = 0;
    for (let it = 0; it < ITERATIONS; it++) {
      const text = randomHead(next);
      const where = `seed ${SEED} iteration ${it}: ${JSON.stringify(text)}`;
      const old = referenceParse(text);
      const now = parseRequestHead(text);
      if (isHeadError(old) || isHeadError(now)) {
        expect(now, where).to.deep.equal(old);
        continue;
      }
      accepted++;
      expect(summary(now), where).to.deep.equal(summary(old));
      const collected = collectRequestHeaders(old.rawHeaders, false);
      expect(now.problem, where).to.equal(
        isHeaderProblem(collected) ? collected.message : undefined,
      );
      const p = prepareH1Head(now, 'fallback.svc');
      if (isHeadProblem(p) || isHeaderProblem(collected)) continue;
      forwarded++;
      // What the rules are given is what the string path forwarded.
      const rules = forwardedRequestHeaders(now.rawHeaders).headers;
      expect(rules, where).to.deep.equal(collected.headers);
      const identity = 'By=spiffe://d/api;URI=spiffe://d/web';
      const bytes = written(now, p.target, p.authority, identity);
      const before = referenceHeadText(
        p.target,
        p.authority,
        { ...collected.headers, 'x-forwarded-client-cert': identity },
        old,
      );
      // The same request line, then the same fields with the same values in the same order
      // per name (the order between names may differ: it carries no meaning).
      expect(bytes.slice(0, bytes.indexOf('\r\n')), where).to.equal(
        before.slice(0, before.indexOf('\r\n')),
      );
      expect(fieldsOf(bytes), where).to.deep.equal(fieldsOf(before));
      // ... and each field the rules saw, with its values, reaches the next hop (the length
      // as the number the body was framed by: "05" goes as "5", as it did before; values as
      // a reader reads them, without trailing whitespace).
      const sent = fieldsOf(bytes);
      for (const [k, v] of Object.entries(rules)) {
        // Joined cookies can end in whitespace (an empty Cookie line) that a reader trims.
        const values = (Array.isArray(v) ? v : [v]).map((x) => x.replace(/[ \t]+$/, ''));
        if (k === 'content-length') expect(sent[k], where).to.deep.equal([String(Number(v))]);
        else expect(sent[k], `${where} field ${k}`).to.deep.equal(values);
      }
    }
    // The pools must reach both sides often, or the comparison proves little.
    expect(accepted, 'heads accepted').to.be.above(ITERATIONS / 4);
    expect(forwarded, 'heads forwarded').to.be.above(ITERATIONS / 10);
  });

  it(`${ITERATIONS} mutated heads (CR, LF, NUL, SP, HTAB, ':', obs-text): same decision and reading`, () => {
    const next = rng(SEED + 1);
    const inserts = ['\r', '\n', '\r\n', '\0', ' ', '\t', ':', ',', '_', '\x7f', '\xff', '\r\n '];
    let accepted = 0;
    for (let it = 0; it < ITERATIONS; it++) {
      let text = randomHead(next);
      for (let m = 1 + (next() % 3); m > 0; m--) {
        const at = next() % (text.length + 1);
        text =
          next() % 4 === 0
            ? text.slice(0, at) + text.slice(at + 1)
            : text.slice(0, at) + inserts[next() % inserts.length]! + text.slice(at);
      }
      const where = `seed ${SEED + 1} iteration ${it}: ${JSON.stringify(text)}`;
      const old = referenceParse(text);
      const now = parseRequestHead(text);
      if (isHeadError(old) || isHeadError(now)) {
        expect(now, where).to.deep.equal(old);
        continue;
      }
      accepted++;
      expect(summary(now), where).to.deep.equal(summary(old));
      const collected = collectRequestHeaders(old.rawHeaders, false);
      expect(now.problem, where).to.equal(
        isHeaderProblem(collected) ? collected.message : undefined,
      );
    }
    expect(accepted, 'heads accepted').to.be.above(ITERATIONS / 10);
  });
});
