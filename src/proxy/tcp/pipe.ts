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
  a.on('data', (d: Buffer) => {
    stats.bytesIn += d.length;
  });
  b.on('data', (d: Buffer) => {
    stats.bytesOut += d.length;
  });
  a.pipe(b);
  b.pipe(a);
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
