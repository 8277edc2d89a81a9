/**
 * A request body that can be sent a second time. The caller's proxy keeps the chunks it has
 * forwarded (references, no copies) up to a limit, so that when the upstream proxy answers "I
 * never handed it to my app" the request, POSTs included, can go to another endpoint with the
 * same bytes. Past the limit the chunks are dropped and the request is no longer replayable.
 */
import { Writable } from 'node:stream';
import type { Downstream } from './downstream.js';

/** Bodies up to this size can be resent (Envoy keeps a similar per-request retry buffer). */
export const REPLAY_LIMIT = 64 * 1024;

export class BodyReplay {
  #chunks: Buffer[] | undefined = [];
  #size = 0;
  #ended = false;
  #started = false;
  #dest: Writable | undefined;
  /** The write waiting for the current destination to drain (released if it goes away). */
  #pending: (() => void) | undefined;
  readonly #tee: Writable;
  /** `down` with its body sent through this replay (what targets are given). */
  readonly downstream: Downstream;

  constructor(
    private readonly down: Downstream,
    private readonly limit = REPLAY_LIMIT,
  ) {
    this.#tee = new Writable({
      write: (chunk: Buffer, _enc, cb) => this.#write(chunk, cb),
      final: (cb) => {
        this.#ended = true;
        const d = this.#dest;
        if (d && !d.destroyed && !d.writableEnded) d.end();
        cb();
      },
    });
    this.#tee.on('error', () => undefined);
    // Everything but the body is the request's own (getters included, so delegate by hand).
    this.downstream = {
      get version() {
        return down.version;
      },
      get method() {
        return down.method;
      },
      get target() {
        return down.target;
      },
      get authority() {
        return down.authority;
      },
      get headers() {
        return down.headers;
      },
      get rawHeaders() {
        return down.rawHeaders;
      },
      get grpc() {
        return down.grpc;
      },
      hasBody: down.hasBody,
      get responded() {
        return down.responded;
      },
      sendBodyTo: (w) => this.sendTo(w),
      relay: (res) => down.relay(res),
      refuse: (status, reason, message) => down.refuse(status, reason, message),
      malformed: (reason, message) => down.malformed(reason, message),
      abort: () => down.abort(),
      onDone: (fn) => down.onDone(fn),
      bytesIn: () => down.bytesIn(),
      bytesOut: () => down.bytesOut(),
    };
  }

  /** Whether the body can be sent again from its start (all of it so far is kept). */
  get replayable(): boolean {
    return this.#chunks !== undefined;
  }

  /** Sends the body to `w`: the first time from the client, later from what was kept. */
  sendTo(w: Writable): void {
    this.#dest = w;
    if (!this.#started) {
      this.#started = true;
      this.down.sendBodyTo(this.#tee);
      return;
    }
    for (const c of this.#chunks ?? []) w.write(c);
    if (this.#ended) w.end();
    // A write held for the previous destination's drain goes on to this one.
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.();
  }

  #write(chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.#chunks) {
      this.#size += chunk.length;
      if (this.#size <= this.limit) this.#chunks.push(chunk);
      else this.#chunks = undefined;
    }
    const d = this.#dest;
    if (!d || d.destroyed || d.writableEnded) return cb();
    if (d.write(chunk)) return cb();
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      d.off('drain', release);
      d.off('close', release);
      if (this.#pending === release) this.#pending = undefined;
      cb();
    };
    this.#pending = release;
    d.once('drain', release);
    d.once('close', release);
  }
}
