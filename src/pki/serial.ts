/**
 * Certificate serial numbers. Leaves get 128 random bits (unpredictable serials are the CA/B
 * Forum's defence against chosen-prefix collisions, and need no counter shared between
 * servers). Roots get 53 bits so the CARoot's SerialNumber survives a JSON number.
 */
import { randomBytes } from 'node:crypto';

/** 128 random bits, never zero. DER encoding adds a sign byte when the top bit is set. */
export function randomSerial(): Buffer {
  for (;;) {
    const b = randomBytes(16);
    if (b.some((x) => x !== 0)) return b;
  }
}

/** A random serial in [1, 2^53), as 7 big-endian bytes. */
export function randomRootSerial(): Buffer {
  for (;;) {
    const b = randomBytes(7);
    b[0] = b[0]! & 0x1f; // 53 bits
    if (b.some((x) => x !== 0)) return b;
  }
}

/** A serial as a JS number, or undefined when it does not fit exactly (>= 2^53). */
export function serialToNumber(serial: Buffer): number | undefined {
  let n = 0n;
  for (const b of serial) n = (n << 8n) | BigInt(b);
  return n > 0n && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined;
}
