/**
 * One request's head as the proxy will judge and forward it: normalized target, canonical
 * authority and end-to-end header fields, the same on both listeners and for both HTTP
 * versions. What intentions decide on is exactly what the next hop receives.
 */
import { canonicalAuthority } from './authority.js';
import type { Downstream } from './downstream.js';
import { collectRequestHeaders, isHeaderProblem } from './request-headers.js';
import { normalizeTarget } from './request-target.js';

export interface PreparedHead {
  /** Path and query, normalized. */
  target: string;
  /** Canonical host[:port]. */
  authority: string;
  /** End-to-end fields, one value per field line; no Host (the target sets it). */
  headers: Record<string, string | string[]>;
}

export interface HeadProblem {
  /** HTTP/2 framing rules broken: the stream is reset rather than answered. */
  malformed: boolean;
  message: string;
}

/**
 * Prepares `down`'s head, or says why it is refused. `fallbackAuthority` stands in for a
 * request with no Host or :authority (the outbound listener's destination); without it such
 * a request is refused.
 */
export function prepareHead(
  down: Downstream,
  fallbackAuthority: string | undefined,
): PreparedHead | HeadProblem {
  const collected = collectRequestHeaders(down.rawHeaders, down.version === '2');
  if (isHeaderProblem(collected)) return collected;
  const target = normalizeTarget(down.target);
  if (target === undefined) return { malformed: false, message: 'bad request target' };
  const pseudo = down.version === '2' ? down.headers[':authority'] : undefined;
  const given = typeof pseudo === 'string' ? pseudo : undefined;
  let authority: string | undefined;
  if (given !== undefined) {
    authority = canonicalAuthority(given);
    // RFC 9113 8.3.1: a Host naming another entity than :authority makes the request malformed.
    if (collected.host !== undefined && canonicalAuthority(collected.host) !== authority)
      return { malformed: false, message: 'Host and :authority differ' };
  } else if (collected.host !== undefined) authority = canonicalAuthority(collected.host);
  else if (fallbackAuthority !== undefined) authority = fallbackAuthority;
  else return { malformed: false, message: 'missing Host' };
  if (authority === undefined) return { malformed: false, message: 'invalid Host' };
  return { target, authority, headers: collected.headers };
}

export const isHeadProblem = (h: PreparedHead | HeadProblem): h is HeadProblem => 'message' in h;
