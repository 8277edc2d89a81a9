/**
 * An HTTP/1.1 response head read straight from the bytes received, and written again for the
 * client as ranges of those bytes. Responses are relayed, not judged: the proxy needs their
 * status and framing, and must drop hop-by-hop fields, so each field line is validated and
 * classified where it lies without being turned into strings. The strings (`rawHeaders`,
 * `reasonPhrase`) are made only if something asks for them.
 *
 * The rules are the request parser's (h1-parse.ts): a status line that is exactly
 * `HTTP/1.x SP 3DIGIT [SP reason]`, field names that are tokens, values without control
 * characters, no obsolete folding, one Content-Length value of 1 to 15 digits, one
 * Transfer-Encoding that is `chunked`, never both. Pure: no I/O, no exceptions.
 */
import { copyRange, writeDecimal } from './head-bytes.js';
import { NO_LENGTH, type H1Framing, type H1HeadError } from './h1-parse.js';
import { MAX_HEADER_COUNT } from './limits.js';

export interface H1ResponseHead extends H1Framing {
  status: number;
  /** The reason phrase as received (may be empty). */
  readonly reasonPhrase: string;
  minor: number;
  /** Field lines as received: name, value, name, value, ... (values without surrounding whitespace). */
  readonly rawHeaders: string[];
}

/** What a field line is to the proxy relaying the response. */
export const enum LineKind {
  EndToEnd = 0,
  /** Connection, Keep-Alive, TE, Transfer-Encoding, ...: never crosses the hop. */
  HopByHop = 1,
  /** Written again from the parsed length (one line for equal duplicates). */
  ContentLength = 2,
  /** The proxies' own reason header. */
  ProxyReason = 3,
}

/** Entries per field line in ResponseHead.lines. */
const STRIDE = 5;
const AT_START = 0;
const AT_COLON = 1;
const AT_VALUE = 2;
const AT_VALUE_END = 3;
const AT_KIND = 4;

/** RFC 9110 token characters (field names). */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN_BYTE[c.charCodeAt(0)] = 1;
/** Field value characters: HTAB, visible ASCII, SP and obs-text; no other control. */
const VALUE_BYTE = new Uint8Array(256);
VALUE_BYTE[9] = 1;
for (let b = 0x20; b <= 0xff; b++) if (b !== 0x7f) VALUE_BYTE[b] = 1;

const HTTP_11 = Buffer.from('HTTP/1.1 ', 'latin1');
const CHUNKED_LINE = Buffer.from('transfer-encoding: chunked\r\n', 'latin1');
const CLOSE_LINE = Buffer.from('connection: close\r\n', 'latin1');
const CONTENT_LENGTH_LINE = Buffer.from('content-length: ', 'latin1');
const name = (s: string): Buffer => Buffer.from(s, 'latin1');
const TE = name('te');
const UPGRADE = name('upgrade');
const TRAILER = name('trailer');
const CONNECTION = name('connection');
const KEEP_ALIVE = name('keep-alive');
const CONTENT_LENGTH = name('content-length');
const HTTP2_SETTINGS = name('http2-settings');
const PROXY_CONNECTION = name('proxy-connection');
const PROXY_REASON = name('x-trellis-reason');
const TRANSFER_ENCODING = name('transfer-encoding');
const PROXY_AUTHENTICATE = name('proxy-authenticate');
const PROXY_AUTHORIZATION = name('proxy-authorization');
const CHUNKED = name('chunked');

/**
 * Whether buf[at, at + lower.length) is `lower` ignoring case. `lower` holds only lower-case
 * letters, '2' and '-'; OR-ing 0x20 maps onto those only from A-Z, themselves and control
 * bytes (CR onto '-'), which names and values were checked not to hold: the fold is exact.
 */
function sameName(buf: Buffer, at: number, lower: Buffer): boolean {
  for (let k = 0; k < lower.length; k++) if ((buf[at + k]! | 0x20) !== lower[k]) return false;
  return true;
}

/** A field name's kind, by its length first: most names are none of these. */
function kindOf(buf: Buffer, at: number, len: number): LineKind {
  switch (len) {
    case 2:
      return sameName(buf, at, TE) ? LineKind.HopByHop : LineKind.EndToEnd;
    case 7:
      return sameName(buf, at, UPGRADE) || sameName(buf, at, TRAILER)
        ? LineKind.HopByHop
        : LineKind.EndToEnd;
    case 10:
      return sameName(buf, at, CONNECTION) || sameName(buf, at, KEEP_ALIVE)
        ? LineKind.HopByHop
        : LineKind.EndToEnd;
    case 14:
      if (sameName(buf, at, CONTENT_LENGTH)) return LineKind.ContentLength;
      return sameName(buf, at, HTTP2_SETTINGS) ? LineKind.HopByHop : LineKind.EndToEnd;
    case 16:
      if (sameName(buf, at, PROXY_REASON)) return LineKind.ProxyReason;
      return sameName(buf, at, PROXY_CONNECTION) ? LineKind.HopByHop : LineKind.EndToEnd;
    case 17:
      return sameName(buf, at, TRANSFER_ENCODING) ? LineKind.HopByHop : LineKind.EndToEnd;
    case 18:
      return sameName(buf, at, PROXY_AUTHENTICATE) ? LineKind.HopByHop : LineKind.EndToEnd;
    case 19:
      return sameName(buf, at, PROXY_AUTHORIZATION) ? LineKind.HopByHop : LineKind.EndToEnd;
    default:
      return LineKind.EndToEnd;
  }
}

const bad = (message: string): H1HeadError => ({ status: 400, message });

const isOws = (b: number | undefined): boolean => b === 32 || b === 9;

/** A parsed response head over the bytes it was read from (kept while the response is relayed). */
export class ResponseHead implements H1ResponseHead {
  status = 0;
  minor = 1;
  contentLength = NO_LENGTH;
  chunked = false;
  close = false;
  /** Where the status code starts and the status line ends, in buf. */
  codeAt = 0;
  statusEnd = 0;
  /** Per field line: start, colon, value start, value end (the line's CR), kind. */
  readonly lines: number[] = [];
  /** The index (in lines) of the proxies' reason header, or -1. */
  reasonLine = -1;
  /** Field names (lower case) the Connection header lists besides close and keep-alive. */
  listed: string[] | undefined;
  /**
   * The status line and the lines kept when nothing else is dropped (no listed names, the
   * reason header kept), as runs of contiguous bytes in buf: start, end, start, end, ...
   */
  readonly runs: number[] = [];
  #raw: string[] | undefined;

  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get reasonPhrase(): string {
    return this.statusEnd > this.codeAt + 4
      ? this.buf.toString('latin1', this.codeAt + 4, this.statusEnd)
      : '';
  }

  get rawHeaders(): string[] {
    if (this.#raw) return this.#raw;
    const raw: string[] = [];
    const l = this.lines;
    for (let i = 0; i < l.length; i += STRIDE)
      raw.push(
        this.buf.toString('latin1', l[i + AT_START], l[i + AT_COLON]),
        this.buf.toString('latin1', l[i + AT_VALUE], l[i + AT_VALUE_END]),
      );
    return (this.#raw = raw);
  }

  /** The value of the line at `line` (an index into lines). */
  valueAt(line: number): string {
    return this.buf.toString(
      'latin1',
      this.lines[line + AT_VALUE],
      this.lines[line + AT_VALUE_END],
    );
  }

  /**
   * The head for the client followed by `body` (the body's first bytes, or none): the status
   * line as HTTP/1.1, the end-to-end lines as received, then the framing written from the
   * parsed head and `connection: close` when `close`. Hop-by-hop lines, Content-Length lines
   * and, with `dropReason`, the proxies' reason header are left out. One buffer, so head and
   * first bytes leave in one write (one TLS record).
   */
  writeFor(close: boolean, dropReason: boolean, body: Buffer | undefined): Buffer {
    if (
      this.listed !== undefined ||
      (dropReason && this.reasonLine >= 0) ||
      this.minor !== 1 ||
      this.statusEnd === this.codeAt + 3
    )
      return this.#rewrite(close, dropReason, body);
    // The usual case: the status line and the kept lines as received, in the runs.
    const { buf, runs } = this;
    const length = this.#length();
    let size = 0;
    for (let r = 0; r < runs.length; r += 2) size += runs[r + 1]! - runs[r]!;
    if (length >= 0) size += CONTENT_LENGTH_LINE.length + 17;
    size += (this.chunked ? CHUNKED_LINE.length : 0) + (close ? CLOSE_LINE.length : 0) + 2;
    const out = Buffer.allocUnsafe(size + (body ? body.length : 0));
    let at = 0;
    for (let r = 0; r < runs.length; r += 2) at = copyRange(buf, runs[r]!, runs[r + 1]!, out, at);
    return this.#finish(out, at, length, close, body);
  }

  /** Content-Length to write, or -1. A 204 never has one (RFC 9110 8.6). */
  #length(): number {
    return this.contentLength !== NO_LENGTH && this.status !== 204 ? this.contentLength : -1;
  }

  /** Writes the framing, close and the empty line after out[0, at), then `body`. */
  #finish(
    out: Buffer,
    at: number,
    length: number,
    close: boolean,
    body: Buffer | undefined,
  ): Buffer {
    if (length >= 0) {
      at = copyRange(CONTENT_LENGTH_LINE, 0, CONTENT_LENGTH_LINE.length, out, at);
      at = writeDecimal(length, out, at);
      out[at++] = 13;
      out[at++] = 10;
    }
    if (this.chunked) at = copyRange(CHUNKED_LINE, 0, CHUNKED_LINE.length, out, at);
    if (close) at = copyRange(CLOSE_LINE, 0, CLOSE_LINE.length, out, at);
    out[at++] = 13;
    out[at++] = 10;
    if (body) at += body.copy(out, at);
    return at === out.length ? out : out.subarray(0, at);
  }

  /** writeFor when lines beyond the usual are dropped, or the status line is rewritten. */
  #rewrite(close: boolean, dropReason: boolean, body: Buffer | undefined): Buffer {
    const { buf, lines } = this;
    const n = lines.length;
    // A 204 never has a Content-Length (RFC 9110 8.6): a client must not read it as a length.
    const length =
      this.contentLength !== NO_LENGTH && this.status !== 204 ? this.contentLength : -1;
    // An HTTP/1.1 status line with a reason goes as received, in the first run of lines.
    const asIs = this.minor === 1 && this.statusEnd > this.codeAt + 3;
    let size = asIs ? 0 : HTTP_11.length + (this.statusEnd - this.codeAt) + 3;
    for (let i = 0; i < n; i += STRIDE)
      if (this.#kept(i, dropReason)) size += this.#lineEnd(i) + 2 - lines[i + AT_START]!;
    if (asIs) size += this.statusEnd + 2 - this.start;
    if (length >= 0) size += CONTENT_LENGTH_LINE.length + 17;
    size += (this.chunked ? CHUNKED_LINE.length : 0) + (close ? CLOSE_LINE.length : 0) + 2;
    const out = Buffer.allocUnsafe(size + (body ? body.length : 0));
    let at = 0;
    // Runs of kept lines are contiguous in buf (each with its CRLF): one copy per run.
    let runStart = -1;
    let runEnd = -1;
    if (asIs) {
      runStart = this.start;
      runEnd = this.statusEnd + 2;
    } else {
      at = copyRange(HTTP_11, 0, HTTP_11.length, out, at);
      at = copyRange(buf, this.codeAt, this.statusEnd, out, at);
      if (this.statusEnd === this.codeAt + 3) out[at++] = 32;
      out[at++] = 13;
      out[at++] = 10;
    }
    for (let i = 0; i < n; i += STRIDE) {
      if (!this.#kept(i, dropReason)) continue;
      const s = lines[i + AT_START]!;
      if (s !== runEnd) {
        if (runStart >= 0) at = copyRange(buf, runStart, runEnd, out, at);
        runStart = s;
      }
      runEnd = this.#lineEnd(i) + 2;
    }
    if (runStart >= 0) at = copyRange(buf, runStart, runEnd, out, at);
    return this.#finish(out, at, length, close, body);
  }

  /** Where the line at `i` ends (its CR): the next line's start - 2, or the head's end. */
  #lineEnd(i: number): number {
    const next = i + STRIDE;
    return next < this.lines.length ? this.lines[next + AT_START]! - 2 : this.end;
  }

  #kept(i: number, dropReason: boolean): boolean {
    const kind = this.lines[i + AT_KIND];
    if (kind === LineKind.HopByHop || kind === LineKind.ContentLength) return false;
    if (kind === LineKind.ProxyReason && dropReason) return false;
    const listed = this.listed;
    if (listed === undefined) return true;
    const n = this.buf.toString('latin1', this.lines[i + AT_START], this.lines[i + AT_COLON]);
    return !listed.includes(n.toLowerCase());
  }
}

/** Adds the tokens of a Connection value to `head` (close, keep-alive, names to drop). */
function readConnection(head: ResponseHead, value: string): boolean {
  let keepAlive = false;
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t === 'close') head.close = true;
    else if (t === 'keep-alive') keepAlive = true;
    else if (t !== '') (head.listed ??= []).push(t);
  }
  return keepAlive;
}

/**
 * Parses the response head in buf[start, end): `end` is where its final CRLFCRLF begins. The
 * result refers to `buf`, which must not change while it is used. One pass over the bytes.
 */
export function parseResponseBytes(
  buf: Buffer,
  start: number,
  end: number,
): ResponseHead | H1HeadError {
  // Status line: HTTP/1.x SP 3DIGIT [SP reason].
  const minor = buf[start + 7]! - 48;
  const d1 = buf[start + 9]! - 48;
  const d2 = buf[start + 10]! - 48;
  const d3 = buf[start + 11]! - 48;
  if (
    end - start < 12 ||
    buf[start] !== 72 || // H
    buf[start + 1] !== 84 || // T
    buf[start + 2] !== 84 || // T
    buf[start + 3] !== 80 || // P
    buf[start + 4] !== 47 || // /
    buf[start + 5] !== 49 || // 1
    buf[start + 6] !== 46 || // .
    (minor !== 0 && minor !== 1) ||
    buf[start + 8] !== 32 ||
    !(d1 >= 1 && d1 <= 9 && d2 >= 0 && d2 <= 9 && d3 >= 0 && d3 <= 9)
  )
    return bad('malformed status line');
  let eol = start + 12;
  if (eol < end && buf[eol] !== 13) {
    if (buf[eol] !== 32) return bad('malformed status line');
    for (eol++; eol < end; eol++) {
      const b = buf[eol]!;
      if (b === 13) break;
      if (VALUE_BYTE[b] === 0) return bad('malformed status line');
    }
  }
  if (eol < end && buf[eol + 1] !== 10) return bad('malformed status line');
  const head = new ResponseHead(buf, start, end);
  head.minor = minor;
  head.status = d1 * 100 + d2 * 10 + d3;
  head.codeAt = start + 9;
  head.statusEnd = eol;
  const lines = head.lines;
  const runs = head.runs;
  runs.push(start, eol + 2);
  let keepAlive = false;
  let te = 0;
  let i = eol + 2;
  while (i < end) {
    // The name: token characters up to the colon.
    let c = i;
    while (c < end && TOKEN_BYTE[buf[c]!] === 1) c++;
    if (c === i || c === end || buf[c] !== 58 /* ':' */) return badLine(buf, i, end);
    // The value: after OWS, value characters up to the CR that ends the line.
    let vs = c + 1;
    while (vs < end && isOws(buf[vs])) vs++;
    let ve = vs;
    let le = vs;
    for (; le < end; le++) {
      const b = buf[le]!;
      if (b === 13) break;
      if (VALUE_BYTE[b] === 0) return bad(`header ${buf.toString('latin1', i, c)}: invalid value`);
      if (b !== 32 && b !== 9) ve = le + 1;
    }
    // A CR must end the line (CRLF); anywhere else it is a bare CR.
    if (le < end && buf[le + 1] !== 10) return bad('bare CR in a header line');
    if (lines.length >= MAX_HEADER_COUNT * STRIDE)
      return { status: 431, message: 'too many headers' };
    const kind = kindOf(buf, i, c - i);
    if (kind === LineKind.ContentLength) {
      const n = ve - vs;
      if (n < 1 || n > 15) return bad('invalid Content-Length');
      let len = 0;
      for (let k = vs; k < ve; k++) {
        const d = buf[k]! - 48;
        if (d < 0 || d > 9) return bad('invalid Content-Length');
        len = len * 10 + d;
      }
      if (head.contentLength !== NO_LENGTH && head.contentLength !== len)
        return bad('conflicting Content-Length');
      head.contentLength = len;
    } else if (kind === LineKind.HopByHop) {
      const n = c - i;
      if (n === 17) {
        if (ve - vs !== 7 || !sameName(buf, vs, CHUNKED) || ++te > 1)
          return bad('unsupported Transfer-Encoding');
        head.chunked = true;
      } else if (n === 10 && sameName(buf, i, CONNECTION)) {
        // The common value first: no string for it.
        if (ve - vs === 10 && sameName(buf, vs, KEEP_ALIVE)) keepAlive = true;
        else if (readConnection(head, buf.toString('latin1', vs, ve))) keepAlive = true;
      }
    } else if (kind === LineKind.ProxyReason && head.reasonLine < 0) head.reasonLine = lines.length;
    lines.push(i, c, vs, ve, kind);
    if (kind === LineKind.EndToEnd || kind === LineKind.ProxyReason) {
      if (runs[runs.length - 1] === i) runs[runs.length - 1] = le + 2;
      else runs.push(i, le + 2);
    }
    i = le + 2;
  }
  if (head.chunked && head.contentLength !== NO_LENGTH)
    return bad('both Content-Length and Transfer-Encoding');
  if (minor === 0 && !keepAlive) head.close = true;
  return head;
}

/** Why the field line at `i` has no name followed by a colon. */
function badLine(buf: Buffer, i: number, end: number): H1HeadError {
  let le = buf.indexOf(13, i);
  if (le < 0 || le > end) le = end;
  const colon = buf.indexOf(58, i);
  // No colon, an empty name, or a line starting with whitespace (obsolete folding).
  if (colon <= i || colon >= le) return bad('malformed header line');
  return bad('invalid header name');
}

/** Parses a response head given as text (latin1): the bytes before its final CRLFCRLF. */
export function parseResponseHead(text: string): ResponseHead | H1HeadError {
  const buf = Buffer.from(text, 'latin1');
  return parseResponseBytes(buf, 0, buf.length);
}
