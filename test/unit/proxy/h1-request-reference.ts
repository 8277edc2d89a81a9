/**
 * The HTTP/1.1 request path as it was before heads were forwarded as bytes, kept as the oracle
 * the byte-level parser and writer are compared with (h1-request-write.test.ts): the string
 * parser (one regular expression per rule) and the head built as a string from the collected
 * header object. Test code only.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import {
  NO_LENGTH,
  isHeadError,
  type H1Framing,
  type H1HeadError,
  type H1RequestHead,
} from '../../../src/proxy/http/h1-parse.js';
import { MAX_HEADER_COUNT } from '../../../src/proxy/http/limits.js';

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
export function referenceParse(head: string): H1RequestHead | H1HeadError {
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

/** The head the spliced pool wrote before: request line, host, the collected fields, framing. */
export function referenceHeadText(
  path: string,
  authority: string,
  headers: OutgoingHttpHeaders,
  h: H1RequestHead,
): string {
  const minor = h.minor;
  let text = `${h.method} ${path} HTTP/1.${minor}\r\nhost: ${authority}\r\n`;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || k === 'host' || k === 'content-length') continue;
    if (Array.isArray(v)) for (const x of v) text += `${k}: ${x}\r\n`;
    else text += `${k}: ${String(v)}\r\n`;
  }
  if (h.contentLength !== NO_LENGTH) text += `content-length: ${h.contentLength}\r\n`;
  if (h.chunked) text += 'transfer-encoding: chunked\r\n';
  if (minor === 0) text += 'connection: keep-alive\r\n';
  return `${text}\r\n`;
}
