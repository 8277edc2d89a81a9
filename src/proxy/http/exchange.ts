/**
 * Accounting of one request: what the access log and the request metrics record when it is
 * over, however it ended.
 */
import { performance } from 'node:perf_hooks';
import type { Reason } from '../reasons.js';
import type { Downstream } from './downstream.js';

export interface RequestRecord {
  direction: 'inbound' | 'outbound';
  source: string;
  destination: string;
  protocol: 'HTTP/1.1' | 'HTTP/2';
  method: string;
  path: string;
  /** The status sent to the client; 0 when none was (the client left, or a reset). */
  status: number;
  /** Why the proxy answered or ended it itself, `-` when it did not. */
  flags: Reason | '-';
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Where it went: the upstream endpoint or the local app (`host:port`). */
  upstream: string;
  /** Refused before it was handled (a "listener log" line). */
  refused?: boolean;
}

export type RequestObserver = (r: RequestRecord) => void;

export interface Outcome {
  status: number;
  flags: Reason | '-';
  upstream: string;
  /** The normalized target that policy judged and the app received, once there is one. */
  path: string | undefined;
}

/** Starts the clock for `down`; the returned outcome is filled in as the exchange proceeds. */
export function track(
  down: Downstream,
  direction: RequestRecord['direction'],
  source: string,
  destination: string,
  observe: RequestObserver,
): Outcome {
  const started = performance.now();
  const outcome: Outcome = { status: 0, flags: '-', upstream: '', path: undefined };
  down.onDone((completed) => {
    observe({
      direction,
      source,
      destination,
      protocol: down.version === '2' ? 'HTTP/2' : 'HTTP/1.1',
      method: down.method,
      path: outcome.path ?? down.target,
      status: completed || down.responded ? outcome.status : 0,
      flags: outcome.flags,
      durationMs: performance.now() - started,
      bytesIn: down.bytesIn(),
      bytesOut: down.bytesOut(),
      upstream: outcome.upstream,
    });
  });
  return outcome;
}

/**
 * The record of a request refused before it was handled: an HTTP/1.1 request not even parsed
 * (or tunnelled), with no method or path; or an HTTP/2 stream refused for malformed header
 * fields (`head` given: its method and raw path).
 */
export function refusedRecord(
  direction: RequestRecord['direction'],
  source: string,
  destination: string,
  status: number,
  flags: Reason,
  head?: { method: string; path: string },
): RequestRecord {
  return {
    direction,
    source,
    destination,
    protocol: head ? 'HTTP/2' : 'HTTP/1.1',
    method: head?.method ?? '-',
    path: head?.path ?? '-',
    status,
    flags,
    durationMs: 0,
    bytesIn: 0,
    bytesOut: 0,
    upstream: '',
    refused: true,
  };
}
