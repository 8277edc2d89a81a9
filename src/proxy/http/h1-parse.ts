/**
 * Strict HTTP/1.1 request head parsing (RFC 9112) for the proxy's own HTTP/1.1 path, straight
 * from the bytes received: one pass validates every line and classifies it where it lies (what
 * frames the body, what routes it, what never crosses the hop), without turning the fields into
 * strings. The strings (`rawHeaders`) are made only if something asks for them; the head for
 * the next hop is written from the same bytes (h1-request-write.ts). (Response heads:
 * h1-response-head.ts, by the same rules.) Anything two readers could read two ways is refused:
 * bare CR or LF, obsolete line folding, whitespace before a colon, control characters in
 * values, a request line that is not exactly `METHOD SP target SP HTTP/1.x`, Content-Length
 * that is not 1 to 15 digits or repeated with another value, a Transfer-Encoding other than one
 * `chunked`, both framings at once.
 *
 * Pure: no I/O, no exceptions, fuzzed in the unit tests.
 */
import { MAX_HEADER_COUNT } from './limits.js';

/** Body length when the head declares none. */
export const NO_LENGTH = -1;

export interface H1Framing {
  /** Content-Length, or NO_LENGTH. */
  contentLength: number;
  /** Transfer-Encoding: chunked (the body is forwarded with its chunk framing as received). */
  chunked: boolean;
  /** The sender asked for the connection to close after this message (or is HTTP/1.0 without keep-alive). */
  close: boolean;
}

export interface H1RequestHead extends H1Framing {
  method: string;
  target: string;
  /** 0 or 1: HTTP/1.0 or HTTP/1.1. */
  minor: number;
  /** Field lines as received: name, value, name, value, ... (values without surrounding whitespace). */
  readonly rawHeaders: string[];
  /** An Upgrade field was sent (refused: nothing tunnels around L7 policy). */
  upgrade: boolean;
  /** The first Host value, and how many Host lines there were. */
  host: string | undefined;
  hostCount: number;
  /** Content-Type starts with application/grpc. */
  grpc: boolean;
}

export interface H1HeadError {
  status: 400 | 431;
  message: string;
}

export const isHeadError = (h: object): h is H1HeadError => 'message' in h;

/** Field lines as node's header object: names lower case, repeated values joined by ", ". */
export function headersOf(raw: readonly string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const prev = h[k];
    h[k] = prev === undefined ? raw[i + 1]! : `${prev}, ${raw[i + 1]}`;
  }
  return h;
}

/** What a request's field line is to the proxy forwarding it (RequestHeadBytes.lines). */
export const enum ReqLine {
  /** End-to-end: forwarded as received. */
  Keep = 0,
  /**
   * Not forwarded as received: hop-by-hop fields, Host and Content-Length (written again from
   * the parsed head), client-sent X-Forwarded-Client-Cert (only the proxy may set it).
   */
  Drop = 1,
  /** `TE: trailers` (the first such line): forwarded, as gRPC needs it end to end. */
  TeTrailers = 2,
  /** Cookie: forwarded as received when it is the only one, else joined into one line. */
  Cookie = 3,
}

/** Entries per field line in RequestHeadBytes.lines. */
export const LINE_STRIDE = 5;
/** Offsets within a line's entries: start, colon, value start, value end, kind. */
export const AT_START = 0;
export const AT_COLON = 1;
export const AT_VALUE = 2;
export const AT_VALUE_END = 3;
export const AT_KIND = 4;

/** RFC 9110 token characters (field names, methods). */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN_BYTE[c.charCodeAt(0)] = 1;
/** Field value characters: HTAB, visible ASCII, SP and obs-text; no other control. */
const VALUE_BYTE = new Uint8Array(256);
VALUE_BYTE[9] = 1;
for (let b = 0x20; b <= 0xff; b++) if (b !== 0x7f) VALUE_BYTE[b] = 1;

/** The names the proxy looks at, by id (what `nameId` returns). */
const enum Name {
  Other,
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  Te,
  Upgrade,
  HopByHop,
  Xfcc,
  Cookie,
  ContentType,
  /** Fields that hold one value (request-headers.ts SINGLETONS), besides Host and Content-Length. */
  Singleton,
}

const lower = (s: string): Buffer => Buffer.from(s, 'latin1');
const N_HOST = lower('host');
const N_FROM = lower('from');
const N_COOKIE = lower('cookie');
const N_REFERER = lower('referer');
const N_UPGRADE = lower('upgrade');
const N_TRAILER = lower('trailer');
const N_TE = lower('te');
const N_CONNECTION = lower('connection');
const N_KEEP_ALIVE = lower('keep-alive');
const N_USER_AGENT = lower('user-agent');
const N_CONTENT_TYPE = lower('content-type');
const N_MAX_FORWARDS = lower('max-forwards');
const N_AUTHORIZATION = lower('authorization');
const N_CONTENT_LENGTH = lower('content-length');
const N_HTTP2_SETTINGS = lower('http2-settings');
const N_PROXY_CONNECTION = lower('proxy-connection');
const N_TRANSFER_ENCODING = lower('transfer-encoding');
const N_IF_MODIFIED_SINCE = lower('if-modified-since');
const N_PROXY_AUTHENTICATE = lower('proxy-authenticate');
const N_PROXY_AUTHORIZATION = lower('proxy-authorization');
const N_IF_UNMODIFIED_SINCE = lower('if-unmodified-since');
const N_XFCC = lower('x-forwarded-client-cert');
const V_CHUNKED = lower('chunked');
const V_CLOSE = lower('close');
const V_KEEP_ALIVE = N_KEEP_ALIVE;
const V_TRAILERS = lower('trailers');
const V_GRPC = lower('application/grpc');

/**
 * Whether buf[at, at + lower.length) is `lower` ignoring case. `lower` holds only lower-case
 * letters, '2' and '-'; OR-ing 0x20 maps onto those only from A-Z, themselves and control
 * bytes, which names were checked not to hold: the fold is exact for a token.
 */
function sameName(buf: Buffer, at: number, lowerName: Buffer): boolean {
  for (let k = 0; k < lowerName.length; k++)
    if ((buf[at + k]! | 0x20) !== lowerName[k]) return false;
  return true;
}

/** Whether buf[at, at + s.length) is `s` exactly. */
function sameBytes(buf: Buffer, at: number, s: Buffer): boolean {
  for (let k = 0; k < s.length; k++) if (buf[at + k] !== s[k]) return false;
  return true;
}

/** A field name's id, by its length first: most names are none of these. */
function nameId(buf: Buffer, at: number, len: number): Name {
  switch (len) {
    case 2:
      return sameName(buf, at, N_TE) ? Name.Te : Name.Other;
    case 4:
      if (sameName(buf, at, N_HOST)) return Name.Host;
      return sameName(buf, at, N_FROM) ? Name.Singleton : Name.Other;
    case 6:
      return sameName(buf, at, N_COOKIE) ? Name.Cookie : Name.Other;
    case 7:
      if (sameName(buf, at, N_UPGRADE)) return Name.Upgrade;
      if (sameName(buf, at, N_TRAILER)) return Name.HopByHop;
      return sameName(buf, at, N_REFERER) ? Name.Singleton : Name.Other;
    case 10:
      if (sameName(buf, at, N_CONNECTION)) return Name.Connection;
      if (sameName(buf, at, N_KEEP_ALIVE)) return Name.HopByHop;
      return sameName(buf, at, N_USER_AGENT) ? Name.Singleton : Name.Other;
    case 12:
      if (sameName(buf, at, N_CONTENT_TYPE)) return Name.ContentType;
      return sameName(buf, at, N_MAX_FORWARDS) ? Name.Singleton : Name.Other;
    case 13:
      return sameName(buf, at, N_AUTHORIZATION) ? Name.Singleton : Name.Other;
    case 14:
      if (sameName(buf, at, N_CONTENT_LENGTH)) return Name.ContentLength;
      return sameName(buf, at, N_HTTP2_SETTINGS) ? Name.HopByHop : Name.Other;
    case 16:
      return sameName(buf, at, N_PROXY_CONNECTION) ? Name.HopByHop : Name.Other;
    case 17:
      if (sameName(buf, at, N_TRANSFER_ENCODING)) return Name.TransferEncoding;
      return sameName(buf, at, N_IF_MODIFIED_SINCE) ? Name.Singleton : Name.Other;
    case 18:
      return sameName(buf, at, N_PROXY_AUTHENTICATE) ? Name.HopByHop : Name.Other;
    case 19:
      if (sameName(buf, at, N_PROXY_AUTHORIZATION)) return Name.HopByHop;
      return sameName(buf, at, N_IF_UNMODIFIED_SINCE) ? Name.Singleton : Name.Other;
    case 23:
      return sameName(buf, at, N_XFCC) ? Name.Xfcc : Name.Other;
    default:
      return Name.Other;
  }
}

/** The common methods as constants: no string made per request for them. */
const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS'].map(
  (m) => [lower(m), m] as const,
);

const bad = (message: string): H1HeadError => ({ status: 400, message });

const isOws = (b: number | undefined): boolean => b === 32 || b === 9;

/** Trims SP and HTAB (OWS) from both ends. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Whether a comma-separated Connection value lists `token` (case-insensitive). */
function lists(value: string, token: string): boolean {
  const v = value.toLowerCase();
  if (v === token) return true;
  for (const part of v.split(',')) if (trimOws(part) === token) return true;
  return false;
}

/**
 * A parsed request head over the bytes it was read from (kept while the request is
 * forwarded: they must not change). Strings are made for the method, the target and the first
 * Host value; every other field stays bytes until something asks for `rawHeaders`.
 */
export class RequestHeadBytes implements H1RequestHead {
  method = '';
  target = '';
  minor = 1;
  contentLength = NO_LENGTH;
  chunked = false;
  close = false;
  upgrade = false;
  host: string | undefined = undefined;
  hostCount = 0;
  grpc = false;
  /** Where the request line starts and where it ends (its CR, or the head's end). */
  lineStart = 0;
  lineEnd = 0;
  /** Where the method ends (the SP before the target). */
  methodEnd = 0;
  /** Per field line: start, colon, value start, value end, kind (ReqLine). */
  readonly lines: number[] = [];
  /**
   * The field lines kept when nothing else is dropped or joined (see `simple`), as ranges of
   * bytes to copy: start, end, start, end, ... A line with whitespace after its value goes
   * without it (the value a rule judged, and nothing after it), as the range up to its value's
   * end and the range of its own CRLF.
   */
  readonly runs: number[] = [];
  /** The runs end with the head's last line, without a CRLF (not part of the head's bytes). */
  openRun = false;
  /**
   * Names (lower case) the Connection header lists, besides keep-alive: end-to-end fields of
   * those names are not forwarded (request-headers.ts drops them the same way).
   */
  listed: string[] | undefined = undefined;
  /** Cookie lines: more than one are forwarded as one (request-headers.ts joins them). */
  cookies = 0;
  /**
   * Why the fields cannot be forwarded unambiguously, as request-headers.ts would say it for
   * the same lines (a '_' in a name, a repeated Host or single-valued field), or undefined.
   * The parser accepts such heads; the handler refuses them with this message.
   */
  problem: string | undefined = undefined;
  #raw: string[] | undefined;

  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get rawHeaders(): string[] {
    if (this.#raw) return this.#raw;
    const raw: string[] = [];
    const l = this.lines;
    for (let i = 0; i < l.length; i += LINE_STRIDE)
      raw.push(
        this.buf.toString('latin1', l[i + AT_START], l[i + AT_COLON]),
        this.buf.toString('latin1', l[i + AT_VALUE], l[i + AT_VALUE_END]),
      );
    return (this.#raw = raw);
  }

  /** The forwarded lines are exactly `runs`: no listed names to drop, no cookies to join. */
  get simple(): boolean {
    return this.listed === undefined && this.cookies < 2;
  }

  /** Whether the name of the line at `i` is `name` (lower case) ignoring case. */
  nameIs(i: number, name: string): boolean {
    const at = this.lines[i + AT_START]!;
    if (this.lines[i + AT_COLON]! - at !== name.length) return false;
    for (let k = 0; k < name.length; k++) {
      let b = this.buf[at + k]!;
      if (b >= 65 && b <= 90) b |= 0x20;
      if (b !== name.charCodeAt(k)) return false;
    }
    return true;
  }
}

/** The method's string: a constant for the common ones. */
function methodOf(buf: Buffer, at: number, end: number): string {
  const len = end - at;
  for (const [bytes, name] of METHODS)
    if (bytes.length === len && sameBytes(buf, at, bytes)) return name;
  return buf.toString('latin1', at, end);
}

/** The last Host value seen, so a connection's repeated Host is not made into a string again. */
let lastHost: Buffer = Buffer.alloc(0);
let lastHostText = '';

function hostOf(buf: Buffer, s: number, e: number): string {
  const n = e - s;
  if (n === lastHost.length && n <= 64) {
    let k = 0;
    while (k < n && buf[s + k] === lastHost[k]) k++;
    if (k === n) return lastHostText;
  }
  const text = buf.toString('latin1', s, e);
  if (n <= 64) {
    lastHost = Buffer.from(buf.subarray(s, e));
    lastHostText = text;
  }
  return text;
}

/** Reads the request line at buf[i, end): sets method, target and minor, or says why not. */
function readRequestLine(head: RequestHeadBytes, buf: Buffer, i: number, end: number): boolean {
  head.lineStart = i;
  // METHOD: token characters up to one SP.
  let m = i;
  while (m < end && TOKEN_BYTE[buf[m]!] === 1) m++;
  if (m === i || m >= end || buf[m] !== 32) return false;
  // target: visible ASCII up to one SP; then exactly "HTTP/1.0" or "HTTP/1.1", then CRLF or
  // the head's end.
  let t = m + 1;
  while (t < end) {
    const b = buf[t]!;
    if (b < 0x21 || b > 0x7e) break;
    t++;
  }
  const eol = t + 9;
  if (t === m + 1 || eol > end || buf[t] !== 32) return false;
  if (
    buf[t + 1] !== 72 || // H
    buf[t + 2] !== 84 || // T
    buf[t + 3] !== 84 || // T
    buf[t + 4] !== 80 || // P
    buf[t + 5] !== 47 || // /
    buf[t + 6] !== 49 || // 1
    buf[t + 7] !== 46 || // .
    (buf[t + 8] !== 48 && buf[t + 8] !== 49)
  )
    return false;
  if (eol < end && (eol + 1 >= end || buf[eol] !== 13 || buf[eol + 1] !== 10)) return false;
  head.lineEnd = eol;
  head.minor = buf[t + 8] === 49 ? 1 : 0;
  head.methodEnd = m;
  head.method = methodOf(buf, i, m);
  head.target = t === m + 2 && buf[m + 1] === 47 ? '/' : buf.toString('latin1', m + 1, t);
  return true;
}

/**
 * Notes a single-valued field's line (its name at buf[i, c)): a second line of one is the
 * head's problem. Returns the lines seen so far (starts and ends of their names).
 */
function single(
  head: RequestHeadBytes,
  seen: number[] | undefined,
  buf: Buffer,
  i: number,
  c: number,
): number[] {
  if (seen === undefined) return [i, c];
  for (let k = 0; k < seen.length; k += 2) {
    const s = seen[k]!;
    if (seen[k + 1]! - s !== c - i) continue;
    // Both names are among the few known ones (letters and '-'): the case fold is exact.
    let j = 0;
    while (j < c - i && (buf[s + j]! | 0x20) === (buf[i + j]! | 0x20)) j++;
    if (j === c - i) {
      head.problem = `more than one ${buf.toString('latin1', i, c)} header`;
      return seen;
    }
  }
  seen.push(i, c);
  return seen;
}

/** Whether the value of the line at index `line` (in lines) is buf[vs, ve) byte for byte. */
function sameValue(buf: Buffer, lines: number[], line: number, vs: number, ve: number): boolean {
  const s = lines[line + AT_VALUE]!;
  const n = lines[line + AT_VALUE_END]! - s;
  if (n !== ve - vs) return false;
  for (let k = 0; k < n; k++) if (buf[s + k] !== buf[vs + k]) return false;
  return true;
}

/**
 * Reads a Connection value other than a lone keep-alive or close: sets `close`, adds the names
 * it lists to `listed` (as request-headers.ts reads them), and says whether it asks to keep
 * the connection open.
 */
function readConnection(head: RequestHeadBytes, value: string): boolean {
  if (lists(value, 'close')) head.close = true;
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'keep-alive') (head.listed ??= []).push(name);
  }
  return lists(value, 'keep-alive');
}

/** Where the field line at `i` ends: its CRLF's CR, or the head's end (a bare CR is inside). */
function lineEndOf(buf: Buffer, i: number, end: number): number {
  for (let k = i; k < end; k++) if (buf[k] === 13 && k + 1 < end && buf[k + 1] === 10) return k;
  return end;
}

/** Why a field line with no valid name was refused (the string parser's messages). */
function badName(buf: Buffer, i: number, end: number): H1HeadError {
  const le = lineEndOf(buf, i, end);
  let colon = i;
  while (colon < le && buf[colon] !== 58) colon++;
  // No colon, an empty name, or a line starting with whitespace (obsolete folding).
  if (colon === i || colon === le) return bad('malformed header line');
  return bad('invalid header name');
}

/**
 * Parses the request head in buf[start, end): `end` is where its final CRLFCRLF begins. The
 * result refers to `buf`, which must not change while it is used. One pass over the bytes.
 */
export function parseRequestBytes(
  buf: Buffer,
  start: number,
  end: number,
): RequestHeadBytes | H1HeadError {
  let i = start;
  // Empty lines before a request line are allowed (RFC 9112 2.2).
  while (i + 1 < end && buf[i] === 13 && buf[i + 1] === 10) i += 2;
  const head = new RequestHeadBytes(buf, start, end);
  if (!readRequestLine(head, buf, i, end))
    return bad('malformed request line (one space between method, target and HTTP/1.1)');
  const lines = head.lines;
  const runs = head.runs;
  let te = 0;
  let keepAlive = false;
  let teTrailers = false;
  /** Single-valued fields seen, as where their names lie (few, so a short list). */
  let singles: number[] | undefined;
  let firstLength = -1;
  i = head.lineEnd + 2;
  while (i < end) {
    // The name: token characters up to the colon.
    let c = i;
    let underscore = false;
    for (; c < end; c++) {
      const b = buf[c]!;
      if (TOKEN_BYTE[b] === 0) break;
      if (b === 95) underscore = true;
    }
    if (c === i || c === end || buf[c] !== 58 /* ':' */) return badName(buf, i, end);
    // The value: after OWS, value characters up to the CRLF that ends the line (or the head's
    // end), trailing OWS left out. A CR anywhere else is a bare CR: not a value character.
    let vs = c + 1;
    while (vs < end && isOws(buf[vs])) vs++;
    let ve = vs;
    let le = vs;
    for (; le < end; le++) {
      const b = buf[le]!;
      if (VALUE_BYTE[b] === 0) {
        if (b === 13 && le + 1 < end && buf[le + 1] === 10) break;
        return bad(`header ${buf.toString('latin1', i, c)}: invalid value`);
      }
      if (b !== 32 && b !== 9) ve = le + 1;
    }
    if (lines.length >= MAX_HEADER_COUNT * LINE_STRIDE)
      return { status: 431, message: 'too many headers' };
    const id = nameId(buf, i, c - i);
    let kind = ReqLine.Keep;
    switch (id) {
      case Name.Host:
        kind = ReqLine.Drop;
        if (head.hostCount++ === 0) head.host = hostOf(buf, vs, ve);
        else head.problem ??= 'more than one Host header';
        break;
      case Name.ContentLength: {
        kind = ReqLine.Drop;
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
        // Equal lengths spelled differently ("5", "05") are two values to a header reader.
        if (firstLength < 0) firstLength = lines.length;
        else if (!head.problem && !sameValue(buf, lines, firstLength, vs, ve))
          head.problem = `more than one ${buf.toString('latin1', i, c)} header`;
        break;
      }
      case Name.TransferEncoding:
        kind = ReqLine.Drop;
        if (ve - vs !== 7 || !sameName(buf, vs, V_CHUNKED) || ++te > 1)
          return bad('unsupported Transfer-Encoding');
        head.chunked = true;
        break;
      case Name.Connection:
        kind = ReqLine.Drop;
        if (ve - vs === 10 && sameName(buf, vs, V_KEEP_ALIVE)) keepAlive = true;
        else if (ve - vs === 5 && sameName(buf, vs, V_CLOSE)) {
          head.close = true;
          (head.listed ??= []).push('close');
        } else if (readConnection(head, buf.toString('latin1', vs, ve))) keepAlive = true;
        break;
      case Name.Te:
        // gRPC needs "te: trailers" end to end; it is the one TE value forwarded.
        if (!teTrailers && ve - vs === 8 && sameBytes(buf, vs, V_TRAILERS)) {
          teTrailers = true;
          kind = ReqLine.TeTrailers;
        } else kind = ReqLine.Drop;
        break;
      case Name.Upgrade:
        head.upgrade = true;
        kind = ReqLine.Drop;
        break;
      case Name.HopByHop:
      case Name.Xfcc:
        kind = ReqLine.Drop;
        break;
      case Name.Cookie:
        kind = ReqLine.Cookie;
        head.cookies++;
        break;
      case Name.ContentType:
        if (ve - vs >= 16 && sameBytes(buf, vs, V_GRPC)) head.grpc = true;
        if (!head.problem) singles = single(head, singles, buf, i, c);
        break;
      case Name.Singleton:
        if (!head.problem) singles = single(head, singles, buf, i, c);
        break;
    }
    // request-headers.ts reads every line in order and reports the first problem it meets:
    // a '_' in the name comes before the line's other checks.
    if (underscore && head.problem === undefined)
      head.problem = `header ${JSON.stringify(buf.toString('latin1', i, c))}: '_' in a header name`;
    lines.push(i, c, vs, ve, kind);
    if (kind !== ReqLine.Drop) {
      // The line with its CRLF, or up to its value's end and then its CRLF. The last line's
      // CRLF is not in the head: the writer adds it (`openRun`).
      const last = le === end;
      const runEnd = ve === le ? (last ? le : le + 2) : ve;
      if (runs.length > 0 && runs[runs.length - 1] === i) runs[runs.length - 1] = runEnd;
      else runs.push(i, runEnd);
      if (runEnd === ve && !last) runs.push(le, le + 2);
      head.openRun = last;
    }
    i = le + 2;
  }
  if (head.chunked && head.contentLength !== NO_LENGTH)
    return bad('both Content-Length and Transfer-Encoding');
  if (head.minor === 0 && !keepAlive) head.close = true;
  return head;
}

/** Parses a request head given as text (latin1): the bytes before its final CRLFCRLF. */
export function parseRequestHead(text: string): RequestHeadBytes | H1HeadError {
  const buf = Buffer.from(text, 'latin1');
  return parseRequestBytes(buf, 0, buf.length);
}
