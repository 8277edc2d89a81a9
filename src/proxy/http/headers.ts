/**
 * Header rules shared by every HTTP path of the proxy (HTTP/1.1 and HTTP/2, inbound and
 * outbound): what never crosses a hop, what only the proxy may set, and the conversions
 * between the two versions' header shapes.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1; RFC 9113 8.2.2). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Caller-identity headers only the proxy may set. */
export const XFCC = 'x-forwarded-client-cert';

/** The header on every answer the proxy makes itself: its reason code. */
export const REASON_HEADER = 'x-trellis-reason';

/**
 * The end-to-end headers of a message: hop-by-hop ones, those the Connection header lists,
 * HTTP/2 pseudo-headers and (on requests) any client-sent identity are dropped.
 */
export function endToEnd(
  headers: IncomingHttpHeaders,
  opts: { dropIdentity: boolean; keepTrailersTe?: boolean },
): OutgoingHttpHeaders {
  const connection = headers.connection;
  const listed = connection ? listedIn(String(connection)) : undefined;
  const out: OutgoingHttpHeaders = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(k)) {
      // gRPC needs "te: trailers" end to end over HTTP/2; it is the one TE value allowed there.
      if (opts.keepTrailersTe && k === 'te' && v === 'trailers') out.te = v;
      continue;
    }
    if (listed?.has(k) || (opts.dropIdentity && k === XFCC)) continue;
    out[k] = v;
  }
  return out;
}

function listedIn(connection: string): Set<string> {
  const s = new Set<string>();
  for (const part of connection.split(',')) {
    const h = part.trim().toLowerCase();
    if (h) s.add(h);
  }
  return s;
}

/** One string per header, for matching intentions' header rules. */
export function headerValues(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k in headers) {
    const v = headers[k];
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}

const UNRESERVED = /^[A-Za-z0-9._~-]$/;

/**
 * The request target as intentions must judge it and the app will receive it (RFC 3986 6.2.2):
 * origin-form, escapes of unreserved characters decoded and the rest upper-cased, dot segments
 * removed. Undefined (a 400) when it cannot be made unambiguous: not origin-form, a malformed
 * escape, a backslash, or an escaped '/' or '\\' an app could decode into a separator.
 */
export function normalizeTarget(target: string): string | undefined {
  if (!target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  const raw = q < 0 ? target : target.slice(0, q);
  let path = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\') return undefined;
    if (c !== '%') {
      path += c;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (ch === '/' || ch === '\\') return undefined;
    path += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const segments = path.slice(1).split('/');
  const out: string[] = [];
  for (const s of segments) {
    if (s === '..') out.pop();
    else if (s !== '.') out.push(s);
  }
  const last = segments[segments.length - 1];
  const dir = (last === '.' || last === '..') && out.length > 0 ? '/' : '';
  return `/${out.join('/')}${dir}${q < 0 ? '' : target.slice(q)}`;
}

/** The path of a request target, without its query, for path rules. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** True when a request is gRPC (its refusals must be gRPC statuses, not bare HTTP ones). */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}
