/**
 * Rapid-reset defence (CVE-2023-44487): a client that opens streams and cancels them at once
 * costs the proxy a request to the application each time while never being limited by the
 * concurrent-stream cap. Each session gets a token bucket of stream resets; when it runs dry
 * the session is told ENHANCE_YOUR_CALM and closed. Legitimate cancellations (a user leaving a
 * page, a gRPC deadline) are far below the refill rate.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';

/** Resets a session may make in a burst... */
const BURST = 200;
/** ...and per second after that. */
const PER_SECOND = 50;
const ENHANCE_YOUR_CALM = 11;
/** How long a flooding session may take to flush its GOAWAY before it is cut. */
const GRACE_MS = 1000;

interface Bucket {
  tokens: number;
  at: number;
}

const buckets = new WeakMap<Http2Session, Bucket>();

/** Counts `stream` against its session's budget when it ends in a reset. */
export function guardResets(stream: ServerHttp2Stream, session: Http2Session): void {
  stream.once('close', () => {
    if (stream.rstCode === 0 || !session || session.destroyed) return;
    const now = performance.now();
    let b = buckets.get(session);
    if (!b) buckets.set(session, (b = { tokens: BURST, at: now }));
    b.tokens = Math.min(BURST, b.tokens + ((now - b.at) / 1000) * PER_SECOND);
    b.at = now;
    if (--b.tokens >= 0) return;
    // destroy() right after goaway() can drop the GOAWAY while a write is in flight (seen
    // under load): close gracefully so it is flushed (no new streams are accepted after it),
    // and destroy shortly after in case the flooder keeps streams open.
    session.goaway(ENHANCE_YOUR_CALM);
    session.close();
    setTimeout(() => session.destroy(), GRACE_MS).unref();
  });
}
