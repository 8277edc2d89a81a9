/**
 * A guard ahead of node:http's parser (the path that still uses it: HTTP/1.1 callers of an
 * HTTP/2 application). It follows a connection's raw bytes with the same pieces as the proxy's
 * own HTTP/1.1 front, so both paths refuse the same requests: heads collected by HeadReader and
 * parsed by parseRequestBytes (strict request line, Content-Length of 1 to 15 digits, one
 * `chunked`, no bare LF or folding), bodies followed by BodyFramer (chunk framing checked and
 * its overhead capped). What Node's parser would also refuse is refused here first.
 */
import { BodyFramer, BodyKind } from './h1-body.js';
import { BARE_LF, HeadReader, MORE, TOO_LARGE } from './h1-head-reader.js';
import { isHeadError, NO_LENGTH, parseRequestBytes } from './h1-parse.js';
import { MAX_HEADER_BYTES } from './limits.js';

const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP\/1\.[01]$/;
const DIGITS = /^[0-9]{1,15}$/;

/** Undefined when `line` (without its CRLF) is a well-formed HTTP/1.x request line. */
export function requestLineProblem(line: string): string | undefined {
  return REQUEST_LINE.test(line)
    ? undefined
    : 'malformed request line (one space between method, target and HTTP/1.1)';
}

/** A Content-Length value, or undefined unless it is 1 to 15 digits (OWS trimmed). */
export function parseContentLength(value: string): number | undefined {
  const v = value.trim();
  return DIGITS.test(v) ? Number(v) : undefined;
}

/**
 * Follows the requests on one connection through their framing and reports the first rule
 * broken. Feed it every byte the connection receives, in order.
 */
export class Http1FramingGuard {
  readonly #head = new HeadReader(MAX_HEADER_BYTES + 4096);
  readonly #body = new BodyFramer();
  #inBody = false;
  /** Not followed any further: the request is refused or tunnelled elsewhere. */
  #stopped = false;

  /** A problem (answer 400 and close), or undefined. */
  feed(buf: Buffer): string | undefined {
    let i = 0;
    while (i < buf.length && !this.#stopped) {
      if (this.#inBody) {
        const end = this.#body.feed(buf, i);
        if (end < 0) return this.#body.error;
        i = end;
        if (this.#body.done) this.#inBody = false;
        continue;
      }
      const end = this.#head.read(buf, i);
      if (end === MORE) return undefined;
      if (end === BARE_LF) return 'bare LF in the request head';
      // Past the size limit the head has no end in sight: Node's parser answers 431 itself.
      if (end === TOO_LARGE) return void (this.#stopped = true);
      i = end;
      const reader = this.#head;
      const head = parseRequestBytes(reader.buf, reader.start, reader.end);
      reader.release();
      if (isHeadError(head)) return head.message;
      // Refused as a tunnel by the server, never forwarded.
      if (head.upgrade || head.method === 'CONNECT') return void (this.#stopped = true);
      if (head.chunked) this.#body.start(BodyKind.Chunked, 0, true);
      else if (head.contentLength !== NO_LENGTH)
        this.#body.start(BodyKind.Length, head.contentLength, true);
      else this.#body.start(BodyKind.None, 0, true);
      this.#inBody = !this.#body.done;
    }
    return undefined;
  }
}
