/**
 * Writing HTTP/1.1 heads into a Buffer byte by byte (h1-request-write.ts, h1-response-head.ts):
 * head pieces are short, and a loop costs less than a native call for them. Pure.
 */

/** Copies from[s, e) into `to` at `at`; returns the index after it. */
export function copyRange(from: Buffer, s: number, e: number, to: Buffer, at: number): number {
  if (e - s > 128) return at + from.copy(to, at, s, e);
  for (let k = s; k < e; k++) to[at++] = from[k]!;
  return at;
}

/** Writes `n` (a safe non-negative integer) in decimal; returns the index after it. */
export function writeDecimal(n: number, to: Buffer, at: number): number {
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  for (let k = at + digits - 1; k >= at; k--) {
    to[k] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}
