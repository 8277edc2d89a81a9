/**
 * One request's head as the proxy will judge and forward it: normalized target, canonical
 * authority and end-to-end header fields, the same on both listeners and for both HTTP
 * versions. What intentions decide on is exactly what the next hop receives.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { HeaderFields } from '../../policy/index.js';
import { canonicalAuthority } from './authority.js';
import type { Downstream } from './downstream.js';
import type { RequestHeadBytes } from './h1-parse.js';
import { XFCC, type AddedField } from './headers.js';
import {
  collectRequestHeaders,
  forwardedRequestHeaders,
  isHeaderProblem,
} from './request-headers.js';
import { normalizeTarget, pathOf } from './request-target.js';
import type { RequestHead } from './targets.js';

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

/**
 * Prepares an HTTP/1.1 head read by the proxy's own front, as prepareHead would, without
 * making its fields into an object: the parser found what collectRequestHeaders would refuse
 * (`problem`), and the fields are collected only if a rule or a target asks for them.
 */
export function prepareH1Head(
  head: RequestHeadBytes,
  fallbackAuthority: string | undefined,
): PreparedHead | HeadProblem {
  if (head.problem !== undefined) return { malformed: false, message: head.problem };
  const target = normalizeTarget(head.target);
  if (target === undefined) return { malformed: false, message: 'bad request target' };
  let authority: string | undefined;
  if (head.host !== undefined) authority = canonicalAuthority(head.host);
  else if (fallbackAuthority !== undefined) authority = fallbackAuthority;
  else return { malformed: false, message: 'missing Host' };
  if (authority === undefined) return { malformed: false, message: 'invalid Host' };
  return new LazyHead(head, target, authority);
}

/** A prepared HTTP/1.1 head whose fields are collected when first asked for. */
class LazyHead implements PreparedHead {
  #headers: Record<string, string | string[]> | undefined;

  constructor(
    readonly bytes: RequestHeadBytes,
    readonly target: string,
    readonly authority: string,
  ) {}

  get headers(): Record<string, string | string[]> {
    return (this.#headers ??= forwardedRequestHeaders(this.bytes.rawHeaders).headers);
  }
}

/**
 * The head sent on, and what rules judge of it, from one prepared head: `rules` reads the
 * fields with `host` set to the canonical authority; `headers` adds the caller's identity
 * (`identity`, the X-Forwarded-Client-Cert field) after that. Both are the prepared head's one
 * object, made only when first read: a spliced HTTP/1.1 request is written from its bytes
 * (h1-request-write.ts) and never needs it unless a rule reads a header.
 */
export class SentHead implements RequestHead {
  readonly path: string;
  readonly authority: string;
  /** Path, method and fields as intentions judge them. */
  readonly rules: RuleInput;

  constructor(
    readonly method: string,
    readonly prepared: PreparedHead,
    readonly identity: AddedField | undefined,
  ) {
    this.path = prepared.target;
    this.authority = prepared.authority;
    this.rules = new RuleInput(this);
  }

  /** The fields as rules read them: the authority as `host` (targets set it again from it). */
  fields(): Record<string, string | string[]> {
    const h = this.prepared.headers;
    h.host = this.authority;
    return h;
  }

  get headers(): OutgoingHttpHeaders {
    const h = this.fields();
    if (this.identity !== undefined) h[XFCC] = this.identity.value;
    return h;
  }
}

/** What intentions read of a request: the path without its query, the method, the fields. */
class RuleInput {
  readonly path: string;
  readonly method: string;

  constructor(readonly sent: SentHead) {
    this.path = pathOf(sent.path);
    this.method = sent.method;
  }

  get headers(): HeaderFields {
    return this.sent.fields();
  }
}
