/**
 * Collects an HTTP/1.1 head from a connection's reads: the bytes up to the empty line that ends
 * it, however they are split. Refuses a bare LF at once (a line ending other readers may take
 * for a line break) and reports a head that grows past a size limit. Used by the proxy's own
 * HTTP/1.1 front and by the guard ahead of Node's parser, so both find heads the same way.
 */
const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/** read() found no complete head yet. */
export const MORE = -1;
/** read() found a bare LF: the head is refused. */
export const BARE_LF = -2;
/** read() found the head longer than the limit. */
export const TOO_LARGE = -3;

export class HeadReader {
  /**
   * Once read() returned an index: the head's bytes before its CRLFCRLF are buf[start, end)
   * (the buffer read() was given, or the held pieces joined when the head spanned reads).
   */
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
  #pieces: Buffer[] = [];
  #held = 0;
  /** The last three held bytes, in case CRLFCRLF spans two reads. */
  #tail: Buffer = EMPTY;

  constructor(private readonly limit: number) {}

  /** Bytes of a head held so far (0: between heads). */
  get held(): number {
    return this.#held;
  }

  /**
   * Reads from `buf[i]`: the index just past the head (its text in `text`), or MORE, BARE_LF
   * or TOO_LARGE.
   */
  read(buf: Buffer, i: number): number {
    const held = this.#held;
    // `end` is where CRLFCRLF starts, counted in buf: before i when it began in held bytes.
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
    const limit = found ? Math.max(i, end + 4) : buf.length;
    if (hasBareLf(buf, i, limit, held > 0 ? this.#tail[this.#tail.length - 1]! : -1))
      return BARE_LF;
    if (!found) {
      if (held + buf.length - i > this.limit) return TOO_LARGE;
      const piece = i === 0 ? buf : buf.subarray(i);
      this.#pieces.push(piece);
      this.#held += piece.length;
      this.#tail =
        piece.length >= 3
          ? piece.subarray(piece.length - 3)
          : Buffer.concat([this.#tail, piece]).subarray(-3);
      return MORE;
    }
    if (held === 0) {
      this.buf = buf;
      this.start = i;
      this.end = end;
    } else {
      this.buf = Buffer.concat([...this.#pieces, buf.subarray(i, Math.max(i, end))]);
      this.start = 0;
      this.end = held + end - i;
    }
    this.#pieces = [];
    this.#held = 0;
    this.#tail = EMPTY;
    return this.end - this.start > this.limit ? TOO_LARGE : end + 4;
  }

  /** Lets go of the last head's buffer (once parsed: an idle connection holds no read). */
  release(): void {
    this.buf = EMPTY;
  }

  /** The head's bytes before its CRLFCRLF as text (latin1), once read() returned an index. */
  get text(): string {
    return this.buf.toString('latin1', this.start, this.end);
  }
}

/** Whether buf[from, to) has an LF not preceded by CR (`before`: the byte before `from`, or -1). */
function hasBareLf(buf: Buffer, from: number, to: number, before: number): boolean {
  // A loop over a head's few hundred bytes costs less than a native search per line.
  let prev = before;
  for (let at = from; at < to; at++) {
    const b = buf[at]!;
    if (b === 10 && prev !== 13) return true;
    prev = b;
  }
  return false;
}
