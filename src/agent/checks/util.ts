/**
 * Small helpers the runners share: a deadline that merges a timeout with a caller's abort,
 * bounded output capture, and host:port parsing.
 */
import type { Clock } from '../../core/index.js';
import { formatDuration } from '../../core/index.js';
import type { CheckResult } from './types.js';

/** Consul's defaults: 4KiB of output, 10s per run. */
export const DEFAULT_OUTPUT_MAX_SIZE = 4096;
export const DEFAULT_TIMEOUT_MS = 10_000;

export function critical(output: string): CheckResult {
  return { status: 'critical', output };
}

export function outputMax(size: number | undefined): number {
  return size !== undefined && Number.isInteger(size) && size > 0 ? size : DEFAULT_OUTPUT_MAX_SIZE;
}

export interface Deadline {
  /** Aborts when the timeout fires or the caller's signal aborts. */
  readonly signal: AbortSignal;
  /** Why the run was cut short, for the check output; undefined while it is not. */
  reason(): string | undefined;
  dispose(): void;
}

export function startDeadline(clock: Clock, timeoutMs: number, outer?: AbortSignal): Deadline {
  const ctl = new AbortController();
  let why: string | undefined;
  const cut = (text: string): void => {
    if (why !== undefined) return;
    why = text;
    ctl.abort(new Error(text));
  };
  const timer = clock.setTimeout(
    () => cut(`timed out after ${formatDuration(timeoutMs)}`),
    timeoutMs,
  );
  const onOuter = (): void => cut('check cancelled');
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  return {
    signal: ctl.signal,
    reason: () => why,
    dispose: () => {
      clock.clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

/** Keeps the first `max` bytes; for bodies, where the start says the most. */
export class HeadBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly max: number) {}

  /** Returns false once full, so the caller can stop reading. */
  push(chunk: Buffer): boolean {
    const room = this.max - this.size;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(part);
      this.size += part.length;
    }
    return this.size < this.max;
  }

  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Keeps the last `max` bytes; for scripts, whose errors come at the end (as Consul does). */
export class TailBuffer {
  private tail = Buffer.alloc(0);
  private total = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const joined = chunk.length >= this.max ? chunk : Buffer.concat([this.tail, chunk]);
    this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - this.max)));
  }

  toString(): string {
    const text = this.tail.toString('utf8');
    if (this.total <= this.max) return text;
    return `Captured ${this.tail.length} of ${this.total} bytes\n...\n${text}`;
  }
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parses "host:port" or "[v6]:port"; undefined when the text is not one. */
export function parseHostPort(text: string): HostPort | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) return undefined; // a bare v6 address is ambiguous
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (host === '' || port < 1 || port > 65535) return undefined;
  return { host, port };
}
