/**
 * Reads the client-to-server bytes of an HTTP/2 connection ahead of nghttp2 and judges every
 * header block by RFC 9113 8.2.1, which nghttp2 (as Node configures it) does not enforce on
 * its own: it drops a field with CR, LF or NUL in its value, or a space in its name, and passes
 * the rest of the request on. A proxy must not forward such a request at all; this screen
 * names the streams whose header block (request head or trailers) broke a rule, so the server
 * can reset them before anything is forwarded.
 *
 * The rules, per field: a name is lower-case token characters (RFC 9110 5.6.2), or a
 * pseudo-header (`:` and lower-case letters); a value has no NUL, CR or LF and neither starts
 * nor ends with a space or tab.
 *
 * It follows the preface and the frame headers, skips every payload but those of HEADERS and
 * CONTINUATION, and decodes every header block with its own HPACK decoder, whose dynamic table
 * stays in step with nghttp2's. What nghttp2 would end the connection for anyway ends it here
 * too, before nghttp2 sees the frame: a block that does not decode (COMPRESSION_ERROR), a
 * frame above the frame size limit, a header block interleaved with other frames, padding
 * longer than its frame, a client's PUSH_PROMISE; and, since the screen must hold a block to
 * decode it, a block above maxHeaderBlockBytes. Pure: no I/O.
 */
import { HpackDecoder } from './hpack.js';

/** HTTP/2 error codes (RFC 9113 7) the screen ends a connection with. */
export const H2_ERROR = {
  protocol: 0x1,
  frameSize: 0x6,
  compression: 0x9,
  enhanceYourCalm: 0xb,
} as const;

export interface ScreenLimits {
  /** SETTINGS_MAX_FRAME_SIZE the server advertises (nghttp2 refuses larger frames). */
  maxFrameSize: number;
  /** The most octets of one encoded header block (all its frames, padding excluded). */
  maxHeaderBlockBytes: number;
  /** SETTINGS_HEADER_TABLE_SIZE the server advertises (the HPACK table's limit). */
  headerTableSize: number;
}

export interface ScreenFailure {
  /** The HTTP/2 error code to end the connection with. */
  code: number;
  message: string;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const PUSH_PROMISE = 0x5;
const CONTINUATION = 0x9;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** tchar (RFC 9110 5.6.2) without the upper-case letters: what an HTTP/2 name is made of. */
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
  NAME_CHAR[c.charCodeAt(0)] = 1;

const COLON = 0x3a;
const SP = 0x20;
const HTAB = 0x09;

/** Whether one field is well-formed by RFC 9113 8.2.1 (see the module comment). */
export function isValidField(name: Uint8Array, value: Uint8Array): boolean {
  const n = name.length;
  if (n === 0) return false;
  if (name[0] === COLON) {
    if (n === 1) return false;
    for (let i = 1; i < n; i++) {
      const c = name[i]!;
      if (c < 0x61 || c > 0x7a) return false;
    }
  } else {
    for (let i = 0; i < n; i++) if (NAME_CHAR[name[i]!] === 0) return false;
  }
  const v = value.length;
  if (v === 0) return true;
  const first = value[0]!;
  const last = value[v - 1]!;
  if (first === SP || first === HTAB || last === SP || last === HTAB) return false;
  for (let i = 0; i < v; i++) {
    const c = value[i]!;
    if (c === 0x00 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

const enum State {
  Preface,
  FrameHeader,
  Payload,
  Failed,
}

export class H2HeaderScreen {
  #state = State.Preface;
  #prefaceSeen = 0;
  readonly #head = Buffer.alloc(FRAME_HEADER);
  #headFilled = 0;
  #type = 0;
  #flags = 0;
  #stream = 0;
  #length = 0;
  /** Payload octets of the current frame still to come. */
  #left = 0;
  /** The payload of a HEADERS or CONTINUATION frame, when it spans reads. */
  #payload: Buffer | undefined;
  #collect = false;
  /** The stream whose header block is open (0: none), and its fragments so far. */
  #blockStream = 0;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #failure: ScreenFailure | undefined;
  #badField = false;
  readonly #hpack: HpackDecoder;
  readonly #visit = (name: Buffer, value: Buffer): void => {
    if (!this.#badField && !isValidField(name, value)) this.#badField = true;
  };

  /**
   * `onMalformed` is told, synchronously inside feed(), each stream whose header block broke
   * a rule, before feed() lets the block's bytes pass.
   */
  constructor(
    private readonly onMalformed: (streamId: number) => void,
    private readonly limits: ScreenLimits,
  ) {
    this.#hpack = new HpackDecoder(limits.headerTableSize);
  }

  /** Why the connection must end, once it must. */
  get failure(): ScreenFailure | undefined {
    return this.#failure;
  }

  /**
   * Follows the next bytes the client sent. Returns how many of them may pass on to the
   * server: all of them, or, once the connection must end (see `failure`), those before the
   * frame that broke it.
   */
  feed(chunk: Buffer): number {
    let i = 0;
    let frameStart = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case State.Failed:
          return 0;
        case State.Preface: {
          while (i < chunk.length && this.#prefaceSeen < PREFACE.length) {
            if (chunk[i] !== PREFACE[this.#prefaceSeen])
              return this.#fail(H2_ERROR.protocol, 'not the HTTP/2 connection preface', i);
            i++;
            this.#prefaceSeen++;
          }
          if (this.#prefaceSeen === PREFACE.length) this.#state = State.FrameHeader;
          break;
        }
        case State.FrameHeader: {
          if (this.#headFilled === 0) frameStart = i;
          const take = Math.min(FRAME_HEADER - this.#headFilled, chunk.length - i);
          chunk.copy(this.#head, this.#headFilled, i, i + take);
          this.#headFilled += take;
          i += take;
          if (this.#headFilled < FRAME_HEADER) break;
          this.#headFilled = 0;
          const problem = this.#frameHeader();
          if (problem) return this.#fail(problem.code, problem.message, frameStart);
          if (this.#left === 0) {
            const p = this.#frameDone(EMPTY);
            if (p) return this.#fail(p.code, p.message, frameStart);
          } else this.#state = State.Payload;
          break;
        }
        case State.Payload: {
          const take = Math.min(this.#left, chunk.length - i);
          let whole: Buffer | undefined;
          if (this.#collect) {
            if (take === this.#length)
              whole = chunk.subarray(i, i + take); // all in this read
            else {
              this.#payload ??= Buffer.allocUnsafe(this.#length);
              chunk.copy(this.#payload, this.#length - this.#left, i, i + take);
            }
          }
          i += take;
          this.#left -= take;
          if (this.#left > 0) break;
          this.#state = State.FrameHeader;
          if (!this.#collect) break;
          const payload = whole ?? this.#payload!;
          this.#payload = undefined;
          const p = this.#frameDone(payload);
          if (p) return this.#fail(p.code, p.message, frameStart);
          break;
        }
      }
    }
    return this.#state === State.Failed ? 0 : chunk.length;
  }

  #fail(code: number, message: string, passable: number): number {
    this.#failure = { code, message };
    this.#state = State.Failed;
    this.#blockParts = [];
    this.#payload = undefined;
    return passable;
  }

  /** Reads the frame header just completed; a reason to end the connection, or none. */
  #frameHeader(): ScreenFailure | undefined {
    const h = this.#head;
    this.#length = h.readUIntBE(0, 3);
    this.#type = h[3]!;
    this.#flags = h[4]!;
    this.#stream = h.readUInt32BE(5) & 0x7fffffff;
    this.#left = this.#length;
    if (this.#length > this.limits.maxFrameSize)
      return { code: H2_ERROR.frameSize, message: `frame of ${this.#length} octets` };
    const type = this.#type;
    if (this.#blockStream !== 0 && (type !== CONTINUATION || this.#stream !== this.#blockStream))
      return { code: H2_ERROR.protocol, message: 'header block interrupted' };
    if (type === CONTINUATION && this.#blockStream === 0)
      return { code: H2_ERROR.protocol, message: 'CONTINUATION without a header block' };
    if (type === HEADERS && this.#stream === 0)
      return { code: H2_ERROR.protocol, message: 'HEADERS on stream 0' };
    if (type === PUSH_PROMISE)
      return { code: H2_ERROR.protocol, message: 'PUSH_PROMISE from a client' };
    this.#collect = type === HEADERS || type === CONTINUATION;
    return undefined;
  }

  /** The payload of a HEADERS or CONTINUATION frame, complete (others never get here). */
  #frameDone(payload: Buffer): ScreenFailure | undefined {
    if (!this.#collect) return undefined;
    let fragment = payload;
    if (this.#type === HEADERS) {
      let start = 0;
      let pad = 0;
      if (this.#flags & PADDED) {
        if (payload.length < 1) return { code: H2_ERROR.frameSize, message: 'no pad length' };
        pad = payload[0]!;
        start = 1;
      }
      if (this.#flags & PRIORITY) start += 5;
      if (start + pad > payload.length)
        return { code: H2_ERROR.protocol, message: 'padding longer than the frame' };
      fragment = payload.subarray(start, payload.length - pad);
      this.#blockStream = this.#stream;
    }
    this.#blockBytes += fragment.length;
    if (this.#blockBytes > this.limits.maxHeaderBlockBytes)
      return {
        code: H2_ERROR.enhanceYourCalm,
        message: `header block above ${this.limits.maxHeaderBlockBytes} octets`,
      };
    if ((this.#flags & END_HEADERS) === 0) {
      // The block goes on in a later frame, maybe a later read: keep a copy.
      this.#blockParts.push(Buffer.from(fragment));
      return undefined;
    }
    const block =
      this.#blockParts.length === 0
        ? fragment
        : Buffer.concat([...this.#blockParts, fragment], this.#blockBytes);
    const stream = this.#blockStream;
    this.#blockParts = [];
    this.#blockBytes = 0;
    this.#blockStream = 0;
    this.#badField = false;
    const error = this.#hpack.decode(block, this.#visit);
    if (error !== undefined) return { code: H2_ERROR.compression, message: error };
    if (this.#badField) this.onMalformed(stream);
    return undefined;
  }
}

const EMPTY = Buffer.alloc(0);
