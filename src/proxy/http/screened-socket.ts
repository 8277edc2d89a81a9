/**
 * A socket seen through a filter on what it receives: a Duplex that node:http2 can serve
 * (Node wraps it in a JSStreamSocket) while every byte the peer sends first goes through
 * `filter`, which may stop the flow (it then says how many bytes of the chunk may pass).
 * What the server writes goes to the socket unchanged.
 *
 * node:http2 otherwise reads a net.Socket or TLSSocket in C++, out of JavaScript's reach; this
 * is the only place a check can stand in front of nghttp2.
 *
 * Flow control both ways: a full read buffer pauses the socket, a full socket makes writes
 * wait for 'drain'. Ends and errors cross both ways: the peer's FIN ends the readable side
 * (half-close), end() sends FIN, an error or close of either side destroys the other.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** Returns how many bytes of `chunk` may pass; fewer than all stops the flow for good. */
export type ReceiveFilter = (chunk: Buffer) => number;

export class ScreenedSocket extends Duplex {
  #stopped = false;

  constructor(
    private readonly socket: Socket,
    filter: ReceiveFilter,
    /** Called once when the filter stopped the flow. */
    onStopped: () => void,
  ) {
    super({ allowHalfOpen: true, decodeStrings: false });
    // node:http2 turns Nagle off on a socket it reads itself; it cannot reach this one.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#stopped) return;
      const pass = filter(chunk);
      if (pass < chunk.length) {
        this.#stopped = true;
        socket.pause();
        if (pass > 0) this.push(chunk.subarray(0, pass));
        onStopped();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => {
      if (!this.#stopped) this.push(null);
    });
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.#drained());
  }

  #waiting: (() => void) | undefined;

  #drained(): void {
    const cb = this.#waiting;
    this.#waiting = undefined;
    cb?.();
  }

  override _read(): void {
    if (!this.#stopped) this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) cb();
    else this.#waiting = cb;
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    const s = this.socket;
    s.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = s.write(chunk);
    s.uncork();
    if (ok) cb();
    else this.#waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#waiting = undefined;
    this.socket.destroy();
    cb(err);
  }

  // What node:http2 and loggers read of a socket, passed through.
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}
