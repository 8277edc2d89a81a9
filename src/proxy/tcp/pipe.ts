/**
 * Joins two sockets byte for byte: half-close passes through (one side's end becomes the
 * other's end, the other direction keeps flowing; both sockets must allow half-open), an error
 * or close on either side destroys both, and an idle timeout ends a connection nobody uses.
 * Counts bytes for the access log.
 */
import type { Socket } from 'node:net';

export interface PipeStats {
  bytesIn: number;
  bytesOut: number;
}

/** `a` is the side that connected to us; `b` the side we connected to. */
export function pipeSockets(
  a: Socket,
  b: Socket,
  idleMs: number,
  onClose: (stats: PipeStats, idle: boolean) => void,
): void {
  const stats: PipeStats = { bytesIn: 0, bytesOut: 0 };
  let idle = false;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    a.destroy();
    b.destroy();
    onClose(stats, idle);
  };
  // One 'data' listener per direction does the counting, the write and the backpressure:
  // stream.pipe() plus a counting listener cost two listeners and pipe's bookkeeping per chunk.
  a.on('data', (d: Buffer) => {
    stats.bytesIn += d.length;
    if (!b.write(d)) {
      a.pause();
      b.once('drain', () => a.resume());
    }
  });
  b.on('data', (d: Buffer) => {
    stats.bytesOut += d.length;
    if (!a.write(d)) {
      b.pause();
      a.once('drain', () => b.resume());
    }
  });
  // Half-close passes through: one side's FIN ends the other's writing side.
  a.on('end', () => b.end());
  b.on('end', () => a.end());
  for (const s of [a, b]) {
    s.setTimeout(idleMs, () => {
      idle = true;
      finish();
    });
    s.on('error', finish);
    // With allowHalfOpen, a socket closes only once both of its directions are done, so the
    // first close means the conversation is over (or was cut): tidy up both.
    s.on('close', finish);
  }
}
