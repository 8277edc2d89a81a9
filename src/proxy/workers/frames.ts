/**
 * Messages on the data plane's unix socket (agent <-> `trellis proxy`): each one a 4-byte
 * big-endian length and a V8-serialized value, so plans keep the shapes structured clone
 * keeps (as on the workers' IPC channel). Only the host's agent can reach the socket (its
 * directory and mode say so); a frame over the limit is a broken peer, not a big plan.
 */
import { deserialize, serialize } from 'node:v8';

/** Far above any plan (certificates, a few thousand endpoints). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export function frame(value: unknown): Buffer {
  const body = serialize(value);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export class FrameTooLarge extends Error {}

/** Collects chunks and returns the whole messages they complete. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (len > MAX_FRAME_BYTES)
        throw new FrameTooLarge(`a message of ${len} bytes is over the limit`);
      if (this.#buf.length < 4 + len) break;
      out.push(deserialize(this.#buf.subarray(4, 4 + len)));
      this.#buf = this.#buf.subarray(4 + len);
    }
    return out;
  }
}
