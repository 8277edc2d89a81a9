/**
 * A request's header fields, read once from the raw list the parser saw, into the one object
 * that intentions' header rules judge and that is forwarded: every field line stays a separate
 * value (never joined into one string a rule could not see inside), hop-by-hop fields and
 * client-sent identity are dropped, and what different readers could read differently is
 * refused. Pure, one pass over the fields, so any HTTP front end can use it.
 */
import { HOP_BY_HOP, XFCC } from './headers.js';

/** Why a header list was refused. `malformed`: broken HTTP/2 framing rules (a stream reset). */
export interface HeaderProblem {
  malformed: boolean;
  message: string;
}

export interface CollectedHeaders {
  /** End-to-end fields, names lower case: a value per field line (string[] when repeated). */
  headers: Record<string, string | string[]>;
  /** The Host field's value, if any (HTTP/2's :authority is read by the caller). */
  host: string | undefined;
}

/**
 * Fields that hold one value: two lines of one are read as the first by some servers (Node
 * keeps the first Authorization) and the last or both by others, so two are refused.
 */
const SINGLETONS = new Set([
  'host',
  'authorization',
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'from',
  'max-forwards',
  'if-modified-since',
  'if-unmodified-since',
]);

/** RFC 9110 5.6.2 token characters, minus '_' (see isFieldName). */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/**
 * A field name the proxy forwards: a token without '_'. Many servers (CGI, PHP, nginx and
 * frameworks on them) read `x_check` as `x-check`, so a rule on one could be passed with the
 * other; such names are refused rather than dropped, so nothing disappears silently.
 */
function isFieldName(name: string, lowerOnly: boolean): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
    if (lowerOnly && c >= 65 && c <= 90) return false;
  }
  return true;
}

/** RFC 9113 8.2.1: no NUL, CR or LF, and no whitespace at either end. */
function isH2FieldValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  return !(first === 32 || first === 9 || last === 32 || last === 9);
}

function listedIn(connection: string, into: Set<string>): void {
  for (const part of connection.split(',')) {
    const h = part.trim().toLowerCase();
    if (h) into.add(h);
  }
}

const problem = (message: string, malformed = false): HeaderProblem => ({ malformed, message });

/**
 * Reads `raw` (name, value, name, value, ...: node's rawHeaders) into forwardable headers.
 * `h2`: the HTTP/2 rules apply too (lower-case names, RFC 9113 field values; pseudo-headers
 * are skipped here, the caller reads them).
 */
export function collectRequestHeaders(
  raw: readonly string[],
  h2: boolean,
): CollectedHeaders | HeaderProblem {
  return collect(raw, h2, true);
}

/**
 * The same fields for an HTTP/1.1 head whose problems were already looked for (h1-parse.ts
 * finds exactly those collectRequestHeaders reports, from the bytes: compared in the unit
 * tests), built only when a rule or a target asks for them. Never refuses.
 */
export function forwardedRequestHeaders(raw: readonly string[]): CollectedHeaders {
  return collect(raw, false, false) as CollectedHeaders;
}

function collect(
  raw: readonly string[],
  h2: boolean,
  strict: boolean,
): CollectedHeaders | HeaderProblem {
  const headers: Record<string, string | string[]> = {};
  let host: string | undefined;
  let dropped: Set<string> | undefined;
  let cookie: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (h2) {
      if (!isH2FieldValue(value)) return problem(`header ${name}: invalid value`, true);
      if (name.charCodeAt(0) === 58 /* ':' */) continue;
      if (!isFieldName(name, true)) {
        if (name.includes('_') && isFieldName(name.replace(/_/g, '-'), true))
          return problem(`header ${name}: '_' in a header name`);
        return problem(`header ${JSON.stringify(name)}: invalid name`, true);
      }
    } else if (strict && !isFieldName(name, false)) {
      return problem(`header ${JSON.stringify(name)}: '_' in a header name`);
    }
    const k = h2 ? name : name.toLowerCase();
    if (k === 'host') {
      if (host !== undefined) {
        if (strict) return problem('more than one Host header');
        continue;
      }
      host = value;
      continue;
    }
    if (HOP_BY_HOP.has(k)) {
      if (k === 'connection') listedIn(value, (dropped ??= new Set()));
      // gRPC needs "te: trailers" end to end; it is the one TE value allowed over HTTP/2.
      else if (k === 'te' && value === 'trailers') headers.te = value;
      continue;
    }
    if (k === XFCC) continue;
    if (k === 'cookie') {
      // HTTP/2 splits cookies into fields (RFC 9113 8.2.3); one line again, as HTTP/1.1 needs.
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    // An own property only: `constructor` or `toString` are field names like any other.
    const prev = Object.hasOwn(headers, k) ? headers[k] : undefined;
    if (prev === undefined) headers[k] = value;
    else if (strict && SINGLETONS.has(k)) {
      if (k !== 'content-length' || prev !== value) return problem(`more than one ${name} header`);
    } else if (Array.isArray(prev)) prev.push(value);
    else headers[k] = [prev, value];
  }
  if (cookie !== undefined) headers.cookie = cookie;
  if (dropped) for (const k of dropped) if (k !== 'host') delete headers[k];
  return { headers, host };
}

export const isHeaderProblem = (r: CollectedHeaders | HeaderProblem): r is HeaderProblem =>
  'message' in r;
