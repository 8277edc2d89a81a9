/**
 * The request head for the next hop, written from the bytes the client sent (h1-parse.ts): the
 * request line as received (or with the normalized target), `host` with the canonical
 * authority, the end-to-end field lines copied as runs of contiguous bytes, then what the proxy
 * adds (X-Forwarded-Client-Cert on the public side) and the framing written from the parsed
 * head. One buffer, with the body's first bytes after it when they came with the head, so it
 * leaves in one write.
 *
 * The fields forwarded are exactly those request-headers.ts collects for policy (the unit tests
 * compare the two): hop-by-hop fields, those the Connection header lists, a client's own
 * X-Forwarded-Client-Cert, Host and Content-Length (written again) are left out; `TE: trailers`
 * is kept; several Cookie lines become one. A value goes without the whitespace after it, so
 * the application reads the value a rule judged. Pure.
 */
import { copyRange, writeDecimal } from './head-bytes.js';
import {
  AT_KIND,
  AT_START,
  AT_VALUE,
  AT_VALUE_END,
  LINE_STRIDE,
  NO_LENGTH,
  ReqLine,
  type RequestHeadBytes,
} from './h1-parse.js';

const HOST_LINE = Buffer.from('host: ', 'latin1');
const COOKIE_LINE = Buffer.from('cookie: ', 'latin1');
const CONTENT_LENGTH_LINE = Buffer.from('content-length: ', 'latin1');
const CHUNKED_LINE = Buffer.from('transfer-encoding: chunked\r\n', 'latin1');
const KEEP_ALIVE_LINE = Buffer.from('connection: keep-alive\r\n', 'latin1');
const HTTP_1 = Buffer.from(' HTTP/1.', 'latin1');

/**
 * The head for the next hop followed by `body` (the body's first bytes, or none): `path` is the
 * normalized target (the request line is copied when it is the target received), `authority`
 * the canonical Host, `added` the line of a field the proxy adds (X-Forwarded-Client-Cert,
 * with its CRLF), if any.
 */
export function writeRequestHead(
  h: RequestHeadBytes,
  path: string,
  authority: string,
  added: Buffer | undefined,
  body: Buffer | undefined,
): Buffer {
  const { buf, lines } = h;
  const sameLine = path === h.target;
  const simple = h.simple;
  let size = sameLine
    ? h.lineEnd - h.lineStart + 2
    : h.methodEnd - h.lineStart + 1 + path.length + HTTP_1.length + 3;
  size += HOST_LINE.length + authority.length + 2;
  if (simple) {
    const runs = h.runs;
    for (let r = 0; r < runs.length; r += 2) size += runs[r + 1]! - runs[r]!;
    if (h.openRun) size += 2;
  } else {
    for (let i = 0; i < lines.length; i += LINE_STRIDE)
      if (kept(h, i)) size += lines[i + AT_VALUE_END]! - lines[i + AT_START]! + 2;
    if (h.cookies > 1) size += COOKIE_LINE.length + 2;
  }
  if (added !== undefined) size += added.length;
  if (h.contentLength !== NO_LENGTH) size += CONTENT_LENGTH_LINE.length + 17;
  if (h.chunked) size += CHUNKED_LINE.length;
  if (h.minor === 0) size += KEEP_ALIVE_LINE.length;
  size += 2;
  // Joined cookies are the one part whose size is known only once joined.
  const cookie = !simple && h.cookies > 1 ? joinedCookie(h) : undefined;
  if (cookie !== undefined) size += cookie.length;
  const out = Buffer.allocUnsafe(size + (body ? body.length : 0));
  let at = 0;
  if (sameLine) at = copyRange(buf, h.lineStart, h.lineEnd, out, at);
  else {
    at = copyRange(buf, h.lineStart, h.methodEnd, out, at);
    out[at++] = 32;
    at = writeText(path, out, at);
    at = copyRange(HTTP_1, 0, HTTP_1.length, out, at);
    out[at++] = h.minor === 1 ? 49 : 48;
  }
  at = crlf(out, at);
  at = copyRange(HOST_LINE, 0, HOST_LINE.length, out, at);
  at = crlf(out, writeText(authority, out, at));
  if (simple) {
    const runs = h.runs;
    for (let r = 0; r < runs.length; r += 2) at = copyRange(buf, runs[r]!, runs[r + 1]!, out, at);
    if (h.openRun) at = crlf(out, at);
  } else {
    for (let i = 0; i < lines.length; i += LINE_STRIDE)
      if (kept(h, i))
        at = crlf(out, copyRange(buf, lines[i + AT_START]!, lines[i + AT_VALUE_END]!, out, at));
    if (cookie !== undefined) {
      at = copyRange(COOKIE_LINE, 0, COOKIE_LINE.length, out, at);
      at = crlf(out, writeText(cookie, out, at));
    }
  }
  if (added !== undefined) at = copyRange(added, 0, added.length, out, at);
  // The body goes as the bytes the client framed, so its framing is written from the parsed
  // head, never dropped because the client listed it in Connection (the app would read the
  // body as the next request: smuggling).
  if (h.contentLength !== NO_LENGTH) {
    at = copyRange(CONTENT_LENGTH_LINE, 0, CONTENT_LENGTH_LINE.length, out, at);
    at = crlf(out, writeDecimal(h.contentLength, out, at));
  }
  if (h.chunked) at = copyRange(CHUNKED_LINE, 0, CHUNKED_LINE.length, out, at);
  // An HTTP/1.0 request keeps the pooled connection open only if it says so.
  if (h.minor === 0) at = copyRange(KEEP_ALIVE_LINE, 0, KEEP_ALIVE_LINE.length, out, at);
  at = crlf(out, at);
  if (body) at += body.copy(out, at);
  return at === out.length ? out : out.subarray(0, at);
}

/**
 * Whether the line at `i` is forwarded when some lines are dropped by name or joined (the
 * `simple` head's runs hold exactly the lines this keeps, when no name is listed and there is
 * at most one cookie).
 */
function kept(h: RequestHeadBytes, i: number): boolean {
  const kind = h.lines[i + AT_KIND];
  if (kind === ReqLine.Drop) return false;
  if (kind === ReqLine.Cookie && h.cookies > 1) return false;
  const listed = h.listed;
  if (listed !== undefined) for (const name of listed) if (h.nameIs(i, name)) return false;
  return true;
}

/** The values of every Cookie line, joined as one (RFC 6265 5.4), or undefined if listed. */
function joinedCookie(h: RequestHeadBytes): string | undefined {
  if (h.listed?.includes('cookie')) return undefined;
  const { buf, lines } = h;
  let v: string | undefined;
  for (let i = 0; i < lines.length; i += LINE_STRIDE) {
    if (lines[i + AT_KIND] !== ReqLine.Cookie) continue;
    const s = buf.toString('latin1', lines[i + AT_VALUE], lines[i + AT_VALUE_END]);
    v = v === undefined ? s : `${v}; ${s}`;
  }
  return v;
}

function crlf(out: Buffer, at: number): number {
  out[at] = 13;
  out[at + 1] = 10;
  return at + 2;
}

/** Writes `s` as latin1 (one byte per character, as a latin1 write of a string does). */
function writeText(s: string, to: Buffer, at: number): number {
  if (s.length > 128) return at + to.write(s, at, 'latin1');
  for (let k = 0; k < s.length; k++) to[at++] = s.charCodeAt(k);
  return at;
}
