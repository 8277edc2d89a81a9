/**
 * Long request and response bodies for the proxies' body tests: deterministic bytes produced
 * a piece at a time (never held whole), a running SHA-256 of what passed, and a process's RSS.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const PIECE = 64 * 1024;

/** Deterministic pseudo-random bytes, one fresh PIECE at a time; `seed` picks the stream. */
export function* body(seed: number, size: number): Generator<Buffer> {
  for (let k = 0, sent = 0; sent < size; k++) {
    const n = Math.min(PIECE, size - sent);
    const words = new Uint32Array(PIECE / 4);
    let x = (seed * 0x9e3779b1 + k * 0x85ebca6b) >>> 0;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    sent += n;
    yield Buffer.from(words.buffer, 0, n);
  }
}

/** Hashes a stream of buffers as it passes. */
export class Tally {
  readonly #hash = createHash('sha256');
  #sum: string | undefined;
  bytes = 0;
  add(b: Buffer): void {
    this.bytes += b.length;
    this.#hash.update(b);
  }
  /** The SHA-256 of everything added (computed once: the body is over). */
  digest(): string {
    return (this.#sum ??= this.#hash.digest('hex'));
  }
}

/** VmRSS of `pid`, bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}
