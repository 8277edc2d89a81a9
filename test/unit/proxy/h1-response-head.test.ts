/**
 * The response head as the proxy writes it for its client (ResponseHead.writeFor): the lines
 * kept as received, hop-by-hop and listed fields dropped, framing written from the parsed
 * head, the status line as HTTP/1.1, and the body's first bytes after it in the same buffer.
 * (What is accepted and refused: h1-parse.test.ts and h1-fuzz.test.ts.)
 */
import { expect } from 'chai';
import { isHeadError } from '../../../src/proxy/http/h1-parse.js';
import { parseResponseBytes, type ResponseHead } from '../../../src/proxy/http/h1-response-head.js';

/** Parses `lines` (with `before` junk bytes ahead, as in a read that held more) . */
function head(lines: string[], before = ''): ResponseHead {
  const text = `${before}${lines.join('\r\n')}\r\n\r\n`;
  const buf = Buffer.from(text, 'latin1');
  const r = parseResponseBytes(buf, before.length, buf.length - 4);
  if (isHeadError(r)) throw new Error(`refused: ${r.message}`);
  return r;
}

const written = (h: ResponseHead, close = false, dropReason = false, body?: string): string =>
  h
    .writeFor(close, dropReason, body === undefined ? undefined : Buffer.from(body))
    .toString('latin1');

describe('proxy/h1-response-head writeFor', () => {
  it('keeps end-to-end lines as received and rewrites the framing once', () => {
    const h = head(
      [
        'HTTP/1.1 200 OK',
        'Server: nginx',
        'Content-Length: 5',
        'X-A:  spaced value  ',
        'Connection: keep-alive',
        'Content-Length: 5',
        'ETag: "x"',
      ],
      'junk',
    );
    expect(written(h, false, false, 'hello')).to.equal(
      'HTTP/1.1 200 OK\r\nServer: nginx\r\nX-A:  spaced value  \r\nETag: "x"\r\n' +
        'content-length: 5\r\n\r\nhello',
    );
  });

  it('drops every hop-by-hop field and writes chunked framing from the parsed head', () => {
    const h = head([
      'HTTP/1.1 200 OK',
      'Keep-Alive: timeout=5',
      'TE: trailers',
      'Trailer: x',
      'Upgrade: h2c',
      'Proxy-Connection: close',
      'Proxy-Authenticate: Basic',
      'Transfer-Encoding: chunked',
      'HTTP2-Settings: AAA',
      'X-Kept: 1',
    ]);
    expect(written(h)).to.equal(
      'HTTP/1.1 200 OK\r\nX-Kept: 1\r\ntransfer-encoding: chunked\r\n\r\n',
    );
  });

  it('drops the fields Connection lists, but never the framing', () => {
    const h = head([
      'HTTP/1.1 200 OK',
      'Connection: X-Secret, content-length',
      'X-Secret: 1',
      'Content-Length: 2',
      'X-Open: 2',
    ]);
    expect(written(h, true, false, 'ok')).to.equal(
      'HTTP/1.1 200 OK\r\nX-Open: 2\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok',
    );
  });

  it("drops the proxies' reason header only when asked", () => {
    const h = head(['HTTP/1.1 503 Service Unavailable', 'x-trellis-reason: LF', 'X-B: 1']);
    expect(h.reasonLine).to.be.at.least(0);
    expect(h.valueAt(h.reasonLine)).to.equal('LF');
    expect(written(h)).to.equal(
      'HTTP/1.1 503 Service Unavailable\r\nx-trellis-reason: LF\r\nX-B: 1\r\n\r\n',
    );
    expect(written(h, false, true)).to.equal('HTTP/1.1 503 Service Unavailable\r\nX-B: 1\r\n\r\n');
  });

  it('answers an HTTP/1.0 or reason-less status line as HTTP/1.1', () => {
    expect(written(head(['HTTP/1.0 200 OK', 'Content-Length: 0']), true)).to.equal(
      'HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(written(head(['HTTP/1.1 204', 'X: y']))).to.equal('HTTP/1.1 204 \r\nX: y\r\n\r\n');
  });

  it('never gives a 204 a Content-Length', () => {
    expect(written(head(['HTTP/1.1 204 No Content', 'Content-Length: 0']))).to.equal(
      'HTTP/1.1 204 No Content\r\n\r\n',
    );
  });

  it('writes long lengths and heads without fields', () => {
    expect(written(head(['HTTP/1.1 200 OK', 'content-length: 123456789012345']))).to.equal(
      'HTTP/1.1 200 OK\r\ncontent-length: 123456789012345\r\n\r\n',
    );
    expect(written(head(['HTTP/1.1 200 OK']), true)).to.equal(
      'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n',
    );
  });

  it('gives the raw fields and reason phrase as strings when asked', () => {
    const h = head(['HTTP/1.1 404 Not Found', 'A: 1', 'b:2 ']);
    expect(h.reasonPhrase).to.equal('Not Found');
    expect(h.rawHeaders).to.deep.equal(['A', '1', 'b', '2']);
  });
});
