/**
 * HTTP/1.1 framing rules that node:http's parser (llhttp) does not enforce, checked on the raw
 * bytes of a connection before the parser sees them:
 *
 *   - the request line is exactly `METHOD SP target SP HTTP/1.1` (or 1.0): one space each,
 *     no tabs, no leading spaces, no HTTP/0.9 line without a version, no HTTP/2.0;
 *   - Content-Length is 1 to 15 digits (a value past 2^53 cannot be counted exactly, and the
 *     parser would accept it and then wait forever for the body);
 *   - the framing overhead of a chunked body is capped (a body sent as a million 1-byte chunks
 *     costs the proxy a write, and an HTTP/2 frame, per byte).
 *
 * The rules are pure functions and a byte-level state machine with no I/O, so the head-only
 * parser that replaces node:http can reuse them.
 */
import { MAX_HEADER_BYTES } from './limits.js';

/** Chunk-size lines, chunk CRLFs and trailers a chunked body may carry for free... */
export const CHUNK_FREE_OVERHEAD = 16 * 1024;
/** ...and on top of that, one byte of framing per this many bytes of data. */
export const CHUNK_DATA_PER_OVERHEAD_BYTE = 4;
/** A chunk-size line (size and extensions) longer than this is refused. */
const MAX_CHUNK_LINE = 1024;
/** Past this, a head has no end in sight: the parser answers 431 itself. */
const MAX_HEAD = MAX_HEADER_BYTES + 4096;

const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP\/1\.[01]$/;
const DIGITS = /^[0-9]{1,15}$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/;

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

const enum State {
  Head,
  Body,
  ChunkLine,
  ChunkData,
  TrailerLine,
  /** Not followed any further: the request is refused or tunnelled elsewhere. */
  Stopped,
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/**
 * Follows the requests on one connection through their framing and reports the first rule
 * broken. Feed it every byte the connection receives, in order.
 */
export class Http1FramingGuard {
  #state = State.Head;
  /** The head so far, when it spans reads. */
  #pieces: Buffer[] = [];
  #headLength = 0;
  /** The last three bytes held, in case CRLFCRLF spans reads. */
  #tail: Buffer = EMPTY;
  /** Body or chunk bytes still to skip (chunk data includes its CRLF). */
  #left = 0;
  #line = '';
  #overhead = 0;
  #data = 0;

  /** A problem (answer 400 and close), or undefined. */
  feed(buf: Buffer): string | undefined {
    let i = 0;
    while (i < buf.length) {
      switch (this.#state) {
        case State.Stopped:
          return undefined;
        case State.Head: {
          const r = this.#head(buf, i);
          if (typeof r === 'string') return r;
          if (r < 0) return undefined; // the head continues in the next read
          i = r;
          break;
        }
        case State.Body:
        case State.ChunkData: {
          const n = Math.min(this.#left, buf.length - i);
          i += n;
          this.#left -= n;
          if (this.#left === 0)
            this.#state = this.#state === State.Body ? State.Head : State.ChunkLine;
          break;
        }
        case State.ChunkLine:
        case State.TrailerLine: {
          const lf = buf.indexOf(10, i);
          const end = lf < 0 ? buf.length : lf;
          this.#line += buf.toString('latin1', i, end);
          if (this.#line.length > MAX_CHUNK_LINE) return 'chunk-size line too long';
          if (lf < 0) return undefined;
          i = lf + 1;
          const problem = this.#lineDone();
          if (problem) return problem;
          break;
        }
      }
    }
    return undefined;
  }

  /** A complete chunk-size or trailer line is in #line (without its LF). */
  #lineDone(): string | undefined {
    const line = this.#line;
    this.#line = '';
    this.#overhead += line.length + 1;
    if (!line.endsWith('\r')) return 'bare LF in chunked framing';
    if (this.#state === State.TrailerLine) {
      if (line.length === 1) this.#startHead();
    } else {
      const m = CHUNK_SIZE.exec(line.slice(0, -1));
      if (!m) return 'invalid chunk size';
      const size = parseInt(m[1]!, 16);
      if (size === 0) this.#state = State.TrailerLine;
      else {
        this.#data += size;
        this.#overhead += 2;
        this.#left = size + 2;
        this.#state = State.ChunkData;
      }
    }
    if (this.#overhead > CHUNK_FREE_OVERHEAD + this.#data / CHUNK_DATA_PER_OVERHEAD_BYTE)
      return 'too much chunk framing for the data it carries';
    return undefined;
  }

  #startHead(): void {
    this.#state = State.Head;
    this.#overhead = 0;
    this.#data = 0;
  }

  /**
   * Looks for the end of a head starting at `buf[i]`. Returns where the body starts in `buf`,
   * -1 when more bytes are needed, or a problem.
   */
  #head(buf: Buffer, i: number): number | string {
    // Empty lines before a request line are allowed (RFC 9112 2.2).
    if (this.#headLength === 0)
      while (i + 1 < buf.length && buf[i] === 13 && buf[i + 1] === 10) i += 2;
    if (i >= buf.length) return -1;
    // Search the new bytes, with the last three held ones in case CRLFCRLF spans two reads.
    const held = this.#headLength;
    // `end` is where the terminator starts, counted in `buf`: before `i` (negative, even) when
    // it began in a held piece.
    let end: number;
    let found: boolean;
    if (held === 0) {
      end = buf.indexOf(CRLFCRLF, i);
      found = end >= 0;
    } else {
      const tail = this.#tail;
      const at = Buffer.concat([tail, buf.subarray(i)]).indexOf(CRLFCRLF);
      found = at >= 0;
      end = i + at - tail.length;
    }
    if (!found && held + buf.length - i > MAX_HEAD) {
      this.#state = State.Stopped;
      return buf.length;
    }
    if (!found) {
      const piece = buf.subarray(i);
      this.#pieces.push(piece);
      this.#headLength += piece.length;
      this.#tail =
        piece.length >= 3
          ? piece.subarray(piece.length - 3)
          : Buffer.concat([this.#tail, piece]).subarray(-3);
      return -1;
    }
    // `end` may be before i (the terminator began in a held piece): take what the head needs.
    const headEnd = end + 4;
    const head =
      held === 0
        ? buf.toString('latin1', i, end)
        : Buffer.concat([...this.#pieces, buf.subarray(i, Math.max(i, headEnd))])
            .subarray(0, held + end - i)
            .toString('latin1');
    this.#pieces = [];
    this.#headLength = 0;
    this.#tail = EMPTY;
    const problem = this.#framing(head);
    return problem ?? headEnd;
  }

  /** Checks a complete head (no final CRLFCRLF) and sets up what follows it. */
  #framing(head: string): string | undefined {
    // Empty lines before the request line may also have been split across reads.
    while (head.startsWith('\r\n')) head = head.slice(2);
    const lines = head.split('\r\n');
    const bad = requestLineProblem(lines[0]!);
    if (bad) return bad;
    let length: number | undefined;
    let chunked = false;
    for (let n = 1; n < lines.length; n++) {
      const line = lines[n]!;
      const colon = line.indexOf(':');
      if (colon <= 0) continue; // the parser refuses it
      const name = line.slice(0, colon).toLowerCase();
      if (name === 'content-length') {
        const v = parseContentLength(line.slice(colon + 1));
        if (v === undefined) return 'invalid Content-Length';
        if (length !== undefined && length !== v) return 'conflicting Content-Length';
        length = v;
      } else if (name === 'transfer-encoding') {
        if (
          line
            .slice(colon + 1)
            .trim()
            .toLowerCase() !== 'chunked' ||
          chunked
        )
          return 'unsupported Transfer-Encoding';
        chunked = true;
      } else if (name === 'upgrade') {
        this.#state = State.Stopped; // refused as a tunnel, never forwarded
        return undefined;
      }
    }
    if (lines[0]!.startsWith('CONNECT ')) {
      this.#state = State.Stopped;
      return undefined;
    }
    if (chunked && length !== undefined) return 'both Content-Length and Transfer-Encoding';
    if (chunked) {
      this.#overhead = 0;
      this.#data = 0;
      this.#state = State.ChunkLine;
    } else if (length) {
      this.#left = length;
      this.#state = State.Body;
    }
    return undefined;
  }
}
