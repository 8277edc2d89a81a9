/**
 * Strict HTTP/1.1 head parsing (RFC 9112) for the proxy's own HTTP/1.1 path: a request head,
 * as the bytes up to the empty line, becomes its start line, its field lines as received
 * (name, value, name, value, ...) and what frames the body that follows. (Response heads:
 * h1-response-head.ts, by the same rules.) Anything two
 * readers could read two ways is refused: bare CR or LF, obsolete line folding, whitespace
 * before a colon, control characters in values, a request line that is not exactly
 * `METHOD SP target SP HTTP/1.x`, Content-Length that is not 1 to 15 digits or repeated with
 * another value, a Transfer-Encoding other than one `chunked`, both framings at once.
 *
 * Pure functions over a latin1 string: no I/O, no exceptions, fuzzed in the unit tests.
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
  rawHeaders: string[];
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

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A field value after trimming: visible ASCII, SP, HTAB and obs-text; no other control. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^[0-9]{1,15}$/;

const bad = (message: string): H1HeadError => ({ status: 400, message });

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

interface Fields extends H1Framing {
  rawHeaders: string[];
  upgrade: boolean;
  host: string | undefined;
  hostCount: number;
  grpc: boolean;
  keepAlive: boolean;
}

/**
 * Reads the field lines of `head` from `from` (just after the start line's CRLF) to its end.
 * `minor`: the message's HTTP minor version (decides the default of `close`).
 */
function readFields(head: string, from: number, minor: number): Fields | H1HeadError {
  const raw: string[] = [];
  let contentLength = NO_LENGTH;
  let chunked = false;
  let te = 0;
  let close = false;
  let keepAlive = false;
  let upgrade = false;
  let host: string | undefined;
  let hostCount = 0;
  let grpc = false;
  let i = from;
  const n = head.length;
  while (i < n) {
    let eol = head.indexOf('\r\n', i);
    if (eol < 0) eol = n;
    const line = head.slice(i, eol);
    i = eol + 2;
    const colon = line.indexOf(':');
    // No colon, an empty name, or a line starting with whitespace (obsolete folding) is refused.
    if (colon <= 0) return bad('malformed header line');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return bad('invalid header name');
    const value = trimOws(line.slice(colon + 1));
    if (!FIELD_VALUE.test(value)) return bad(`header ${name}: invalid value`);
    if (raw.length >= MAX_HEADER_COUNT * 2) return { status: 431, message: 'too many headers' };
    raw.push(name, value);
    // Only the few fields that frame the message or route it are looked at here.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          hostCount++;
          if (host === undefined) host = value;
        }
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') upgrade = true;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          if (lists(value, 'close')) close = true;
          if (lists(value, 'keep-alive')) keepAlive = true;
        }
        break;
      case 12:
        if (name.toLowerCase() === 'content-type' && value.startsWith('application/grpc'))
          grpc = true;
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (!DIGITS.test(value)) return bad('invalid Content-Length');
          const len = Number(value);
          if (contentLength !== NO_LENGTH && contentLength !== len)
            return bad('conflicting Content-Length');
          contentLength = len;
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          if (value.toLowerCase() !== 'chunked' || ++te > 1)
            return bad('unsupported Transfer-Encoding');
          chunked = true;
        }
        break;
    }
  }
  if (chunked && contentLength !== NO_LENGTH)
    return bad('both Content-Length and Transfer-Encoding');
  if (minor === 0 && !keepAlive) close = true;
  return {
    rawHeaders: raw,
    contentLength,
    chunked,
    close,
    keepAlive,
    upgrade,
    host,
    hostCount,
    grpc,
  };
}

/** Parses a request head: `head` holds its bytes (latin1) up to, not including, the final CRLFCRLF. */
export function parseRequestHead(head: string): H1RequestHead | H1HeadError {
  let start = 0;
  // Empty lines before a request line are allowed (RFC 9112 2.2).
  while (head.startsWith('\r\n', start)) start += 2;
  let eol = head.indexOf('\r\n', start);
  if (eol < 0) eol = head.length;
  const m = REQUEST_LINE.exec(head.slice(start, eol));
  if (!m) return bad('malformed request line (one space between method, target and HTTP/1.1)');
  const minor = m[3] === '1' ? 1 : 0;
  const f = readFields(head, eol + 2, minor);
  if (isHeadError(f)) return f;
  return {
    method: m[1]!,
    target: m[2]!,
    minor,
    rawHeaders: f.rawHeaders,
    contentLength: f.contentLength,
    chunked: f.chunked,
    close: f.close,
    upgrade: f.upgrade,
    host: f.host,
    hostCount: f.hostCount,
    grpc: f.grpc,
  };
}
