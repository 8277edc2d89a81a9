/**
 * Header rules shared by every HTTP path of the proxy (HTTP/1.1 and HTTP/2, inbound and
 * outbound): what never crosses a hop, what only the proxy may set, and the conversions
 * between the two versions' header shapes.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1; RFC 9113 8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
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

/** A field the proxy adds to requests: its value, and its whole line as bytes (written as is). */
export interface AddedField {
  readonly value: string;
  /** `x-forwarded-client-cert: <value>` CRLF, latin1. */
  readonly line: Buffer;
}

/** The X-Forwarded-Client-Cert field naming a verified caller (made once per caller). */
export function xfccField(value: string): AddedField {
  return { value, line: Buffer.from(`${XFCC}: ${value}\r\n`, 'latin1') };
}

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

/** True when a request is gRPC (its refusals must be gRPC statuses, not bare HTTP ones). */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}
