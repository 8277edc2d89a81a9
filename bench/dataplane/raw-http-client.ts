/**
 * The open-loop generator's HTTP/1.1 client: one fixed request (prebuilt bytes) over a pool of
 * keep-alive connections, one request at a time per connection, answers read by their
 * Content-Length. It does only what the generator needs, so the generator's own CPU per request
 * (and with it its share of the 2 cores the proxies also run on) stays a fraction of undici's;
 * the figure it measures is the path's, not the client's.
 */
import { connect, type Socket } from 'node:net';

/** `status` and body length of a whole answer, or the error that ended it. */
export type Done = (err: Error | undefined, status: number, bodyBytes: number) => void;

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** An answer head larger than this is refused (the apps here send a few hundred bytes). */
const MAX_HEAD = 16 * 1024;

class Conn {
  head: Buffer | undefined;
  status = 0;
  /** Body bytes still to come, -1 while the head is being read. */
  left = -1;
  bodyBytes = 0;
  close = false;
  done: Done | undefined;

  constructor(readonly socket: Socket) {}
}

export class RawHttpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #request: Buffer;
  readonly #max: number;
  readonly #idle: Conn[] = [];
  readonly #all = new Set<Conn>();
  /** Requests waiting for a free connection, in order. */
  #waiting: Done[] = [];
  #waitingAt = 0;
  #closed = false;

  constructor(origin: string, connections: number, body: Buffer | undefined) {
    const url = new URL(origin);
    if (url.protocol !== 'http:') throw new Error(`only http:// origins: ${origin}`);
    this.#host = url.hostname;
    this.#port = Number(url.port || 80);
    this.#max = connections;
    const head = body
      ? `POST / HTTP/1.1\r\nHost: ${url.host}\r\ncontent-type: application/octet-stream\r\n` +
        `content-length: ${body.length}\r\n\r\n`
      : `GET / HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`;
    this.#request = body ? Buffer.concat([Buffer.from(head), body]) : Buffer.from(head);
  }

  /** Sends the request on a free connection (a new one while fewer than the pool's size). */
  send(done: Done): void {
    if (this.#closed) return done(new Error('client closed'), 0, 0);
    const c = this.#idle.pop() ?? (this.#all.size < this.#max ? this.#open() : undefined);
    if (c === undefined) {
      this.#waiting.push(done);
      return;
    }
    this.#start(c, done);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #open(): Conn {
    const socket = connect({ host: this.#host, port: this.#port });
    socket.setNoDelay(true);
    const c = new Conn(socket);
    this.#all.add(c);
    socket.on('data', (d: Buffer) => this.#onData(c, d));
    socket.on('error', (err) => this.#fail(c, err));
    socket.on('close', () => this.#fail(c, new Error('connection closed before the answer')));
    return c;
  }

  #start(c: Conn, done: Done): void {
    c.done = done;
    c.head = undefined;
    c.left = -1;
    c.bodyBytes = 0;
    c.socket.write(this.#request);
  }

  #onData(c: Conn, d: Buffer): void {
    if (c.done === undefined) return this.#fail(c, new Error('bytes nobody asked for'));
    if (c.left < 0) {
      const buf = c.head ? Buffer.concat([c.head, d]) : d;
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_HEAD) return this.#fail(c, new Error('answer head too large'));
        c.head = buf;
        return;
      }
      const head = buf.toString('latin1', 0, end);
      c.status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      if (!length) return this.#fail(c, new Error(`no Content-Length in the answer: ${head}`));
      c.close = /\r\nconnection:[ \t]*close/i.test(head);
      c.left = Number(length[1]);
      c.head = undefined;
      d = buf.subarray(end + 4);
    }
    if (d.length > c.left) return this.#fail(c, new Error('bytes past the answer'));
    c.left -= d.length;
    c.bodyBytes += d.length;
    if (c.left > 0) return;
    const done = c.done;
    c.done = undefined;
    if (c.close) {
      this.#all.delete(c);
      c.socket.destroy();
    } else this.#next(c);
    done(undefined, c.status, c.bodyBytes);
  }

  /** A free connection takes the oldest waiting request, or goes back to the pool. */
  #next(c: Conn): void {
    if (this.#waitingAt < this.#waiting.length) {
      const done = this.#waiting[this.#waitingAt++]!;
      if (this.#waitingAt > 1024 && this.#waitingAt * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#waitingAt);
        this.#waitingAt = 0;
      }
      return this.#start(c, done);
    }
    this.#idle.push(c);
  }

  #fail(c: Conn, err: Error): void {
    const done = c.done;
    c.done = undefined;
    if (this.#all.delete(c)) {
      const i = this.#idle.indexOf(c);
      if (i >= 0) this.#idle.splice(i, 1);
      c.socket.destroy();
      // A waiting request gets a new connection in place of this one.
      if (!this.#closed && this.#waitingAt < this.#waiting.length) {
        const next = this.#waiting[this.#waitingAt++]!;
        this.#start(this.#open(), next);
      }
    }
    done?.(err, 0, 0);
  }
}
