/**
 * The header screen (h2-header-screen.ts) put in front of one HTTP/2 connection a proxy
 * serves: the socket is wrapped so nghttp2 reads only screened bytes, and the verdicts wait
 * for the server's streams. A stream whose request head broke RFC 9113 8.2.1 is reset with
 * PROTOCOL_ERROR when the server announces it, before anything of it is handled; one whose
 * trailers broke it is reset on the spot, before nghttp2 reads them. A connection the screen
 * gives up on is told GOAWAY with the screen's error code and closed.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { H2HeaderScreen } from './h2-header-screen.js';
import { H2_HEADER_TABLE_SIZE, H2_MAX_FRAME_SIZE, H2_MAX_HEADER_BLOCK_BYTES } from './limits.js';
import { ScreenedSocket } from './screened-socket.js';

const PROTOCOL_ERROR = 1;
/** How long a session given up on may take to flush its GOAWAY before it is cut. */
const GRACE_MS = 1000;
/**
 * Verdicts for streams the server never announced (nghttp2 refused them itself) are dropped
 * when a later stream is announced; past this many at once the client is only sending broken
 * requests and the connection ends.
 */
const MAX_PENDING = 256;

export class H2Screening {
  /** What to hand node:http2 instead of the socket. */
  readonly socket: ScreenedSocket;
  #session: Http2Session | undefined;
  /** Streams refused by the screen whose 'stream' event has not come yet. */
  readonly #refused = new Set<number>();
  /** Streams announced and not yet closed (their trailers are still to come). */
  readonly #open = new Map<number, ServerHttp2Stream>();
  readonly #screen: H2HeaderScreen;

  constructor(raw: Socket) {
    this.#screen = new H2HeaderScreen((id) => this.#malformed(id), {
      maxFrameSize: H2_MAX_FRAME_SIZE,
      maxHeaderBlockBytes: H2_MAX_HEADER_BLOCK_BYTES,
      headerTableSize: H2_HEADER_TABLE_SIZE,
    });
    this.socket = new ScreenedSocket(
      raw,
      (chunk) => this.#screen.feed(chunk),
      () => this.#giveUp(this.#screen.failure?.code ?? PROTOCOL_ERROR),
    );
  }

  /** The session node:http2 made for the socket. */
  attach(session: Http2Session): void {
    this.#session = session;
  }

  /**
   * Whether the announced `stream` may be handled; when not, it has been reset with
   * PROTOCOL_ERROR. Call first thing in the server's 'stream' handler.
   */
  admit(stream: ServerHttp2Stream): boolean {
    // A stream the server announces has its id (only a client's own pending streams lack one).
    const id = stream.id!;
    if (this.#refused.size > 0) {
      const refused = this.#refused.delete(id);
      // Streams are announced in id order: an older verdict's stream will never come.
      for (const r of this.#refused) if (r < id) this.#refused.delete(r);
      if (refused) {
        stream.close(PROTOCOL_ERROR);
        return false;
      }
    }
    this.#open.set(id, stream);
    stream.once('close', () => this.#open.delete(id));
    return true;
  }

  #malformed(id: number): void {
    const open = this.#open.get(id);
    if (open) return void open.close(PROTOCOL_ERROR); // trailers
    this.#refused.add(id);
    if (this.#refused.size > MAX_PENDING) this.#giveUp(PROTOCOL_ERROR);
  }

  #giveUp(code: number): void {
    const session = this.#session;
    if (!session || session.destroyed) return void this.socket.destroy();
    session.goaway(code);
    setTimeout(() => session.destroy(), GRACE_MS).unref();
  }
}
