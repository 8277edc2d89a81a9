/**
 * Where an HTTP/1.1 message body ends, found on the raw bytes so the body is forwarded exactly
 * as received (Content-Length bytes, or chunked framing with its chunk lines and trailers)
 * and never re-encoded. Chunked framing is checked as it passes: hex sizes of at most 12
 * digits, CRLF after every line and chunk, well-formed trailer fields, and (for requests) a cap
 * on framing overhead, so a body sent as a million 1-byte chunks is refused.
 *
 * A byte-level state machine with no I/O; the head-only proxy path and the tests drive it.
 */

/** Chunk-size lines, chunk CRLFs and trailers a chunked request body may carry for free... */
export const CHUNK_FREE_OVERHEAD = 16 * 1024;
/** ...and on top of that, one byte of framing per this many bytes of data. */
export const CHUNK_DATA_PER_OVERHEAD_BYTE = 4;

export const enum BodyKind {
  /** No body (a request without framing, HEAD responses, 1xx, 204, 304). */
  None,
  Length,
  Chunked,
  /** A response without framing: the body runs until the connection closes. */
  UntilClose,
}

const enum Chunk {
  Line,
  Data,
  DataCr,
  DataLf,
  Trailer,
}

/** A chunk-size line (size and extensions) longer than this is refused... */
const MAX_CHUNK_LINE = 1024;
/** ...and a trailer field line longer than this. */
const MAX_TRAILER_LINE = 8 * 1024;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?$/;
const TRAILER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/;

export class BodyFramer {
  kind: BodyKind = BodyKind.None;
  /** The body is complete (for UntilClose: never, until the connection ends). */
  done = true;
  /** Body data bytes seen (chunk framing excluded). */
  data = 0;
  /** Why the framing is refused, once feed() returned -1. */
  error = '';
  #left = 0;
  #chunk = Chunk.Line;
  #line = '';
  #overhead = 0;
  #capped = false;

  /** Starts a body; `capOverhead` applies the chunk-framing cap (requests). */
  start(kind: BodyKind, length: number, capOverhead: boolean): void {
    this.kind = kind;
    this.data = 0;
    this.error = '';
    this.#capped = capOverhead;
    this.#overhead = 0;
    this.#line = '';
    this.#chunk = Chunk.Line;
    if (kind === BodyKind.Length && length === 0) this.kind = BodyKind.None;
    this.#left = kind === BodyKind.Length ? length : 0;
    this.done = this.kind === BodyKind.None;
  }

  /**
   * Takes the body's bytes from `buf[i]` on: returns the index just past the body's part of
   * `buf` (so `buf.subarray(i, end)` is forwarded), or -1 when the framing is refused (see
   * `error`). `done` is set once the body is complete; bytes past the index are the next message.
   */
  feed(buf: Buffer, i: number): number {
    switch (this.kind) {
      case BodyKind.None:
        return i;
      case BodyKind.UntilClose:
        this.data += buf.length - i;
        return buf.length;
      case BodyKind.Length: {
        const n = Math.min(this.#left, buf.length - i);
        this.#left -= n;
        this.data += n;
        if (this.#left === 0) this.done = true;
        return i + n;
      }
      case BodyKind.Chunked:
        return this.#chunked(buf, i);
    }
  }

  #chunked(buf: Buffer, i: number): number {
    while (i < buf.length && !this.done) {
      switch (this.#chunk) {
        case Chunk.Data: {
          const n = Math.min(this.#left, buf.length - i);
          i += n;
          this.#left -= n;
          this.data += n;
          if (this.#left === 0) this.#chunk = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (buf[i++] !== 13) return this.#fail('chunk data not followed by CRLF');
          this.#chunk = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (buf[i++] !== 10) return this.#fail('chunk data not followed by CRLF');
          this.#overhead += 2;
          this.#chunk = Chunk.Line;
          break;
        case Chunk.Line:
        case Chunk.Trailer: {
          const lf = buf.indexOf(10, i);
          const end = lf < 0 ? buf.length : lf;
          this.#line += buf.toString('latin1', i, end);
          const max = this.#chunk === Chunk.Line ? MAX_CHUNK_LINE : MAX_TRAILER_LINE;
          if (this.#line.length > max) return this.#fail('chunk-size or trailer line too long');
          if (lf < 0) return buf.length;
          i = lf + 1;
          if (!this.#lineDone()) return -1;
          break;
        }
      }
    }
    return i;
  }

  /** A complete chunk-size or trailer line is in #line (without its LF). */
  #lineDone(): boolean {
    const line = this.#line;
    this.#line = '';
    this.#overhead += line.length + 1;
    if (!line.endsWith('\r')) return this.#fail('bare LF in chunked framing') > 0;
    const text = line.slice(0, -1);
    if (this.#chunk === Chunk.Trailer) {
      if (text.length === 0) this.done = true;
      else if (!TRAILER.test(text)) return this.#fail('malformed trailer field') > 0;
    } else {
      const m = CHUNK_SIZE.exec(text);
      if (!m) return this.#fail('invalid chunk size') > 0;
      const size = parseInt(m[1]!, 16);
      if (size === 0) this.#chunk = Chunk.Trailer;
      else {
        this.#left = size;
        this.#chunk = Chunk.Data;
      }
    }
    if (
      this.#capped &&
      this.#overhead > CHUNK_FREE_OVERHEAD + this.data / CHUNK_DATA_PER_OVERHEAD_BYTE
    )
      return this.#fail('too much chunk framing for the data it carries') > 0;
    return true;
  }

  #fail(why: string): number {
    this.error = why;
    return -1;
  }
}
