/**
 * The proxies' access log: one JSON line per request or connection on stdout, stderr or a file
 * (Consul's proxy-defaults `AccessLogs` picks which, and whether at all), the same shape as
 * the pino logs around it (`level`, `time`, `name`, `component: "access"`, the fields, `msg`),
 * written asynchronously through pino's destination (sonic-boom) in batches of about 4 KiB and
 * at least every 500 ms, so a proxied request pays neither a system call nor pino's general
 * serializer for its line. The fields are flat (strings, numbers, booleans), which is all an
 * access-log line holds. Lines still buffered are written when the process exits.
 */
import { openSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { makeDirs } from '../core/make-dirs.js';

const LEVELS: Record<string, number> = { debug: 20, info: 30, warn: 40, error: 50 };
/** How often buffered lines are written out, at the latest. */
const FLUSH_MS = 500;
/** Characters of lines joined before they go to the destination. */
const BATCH = 8192;

/** One proxied HTTP request, as the proxy records it (proxy/http/exchange.ts RequestRecord). */
export interface RequestLine {
  direction: string;
  source: string;
  destination: string;
  protocol: string;
  method: string;
  path: string;
  status: number;
  flags: string;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  upstream: string;
}

export interface AccessLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** The line of one HTTP request (the same fields as info(..., 'request'), one template). */
  request(r: RequestLine): void;
}

/** A JSON string: quoted as it is unless it holds a quote, a backslash or a control character. */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c === 0x2028 || c === 0x2029) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** Where a logger writes: a file descriptor (1 stdout, 2 stderr) or a file path. */
export type AccessLogDestination = 1 | 2 | string;

/**
 * The access logger of a target (Consul's `AccessLogs.Type` and `Path`), one per target per
 * process, made on first use. A file is appended to (its directory made if missing); a file
 * that cannot be opened or written is reported through `onError` and its lines are dropped
 * (one that could not be opened is tried again the next time a plan asks for it).
 */
export function accessLogFor(
  target: { type: 'stdout' } | { type: 'stderr' } | { type: 'file'; path: string },
  onError: (err: Error, path: string) => void,
): AccessLogger {
  const key = target.type === 'file' ? `file:${target.path}` : target.type;
  let logger = byTarget.get(key);
  if (!logger) {
    const dest = target.type === 'stdout' ? 1 : target.type === 'stderr' ? 2 : target.path;
    logger = createAccessLogger('info', dest, (err) => onError(err, String(dest)));
    // A file that could not be opened is tried again by the next plan that names it.
    if (logger !== DROPPING) byTarget.set(key, logger);
  }
  return logger;
}

const byTarget = new Map<string, AccessLogger>();

/** The logger of a file that could not be opened: its lines are dropped. */
const DROPPING: AccessLogger = { info() {}, warn() {}, error() {}, request() {} };

export function createAccessLogger(
  level = 'info',
  to: AccessLogDestination = 2,
  onError?: (err: Error) => void,
): AccessLogger {
  const min = LEVELS[level] ?? 30;
  let fd: number;
  if (typeof to === 'string') {
    // Opened here, synchronously, so a path that cannot be written is known at once (and
    // pino's exit hook never meets a destination that did not open).
    try {
      makeDirs(dirname(to), 0o777);
      fd = openSync(to, 'a');
    } catch (err) {
      onError?.(err as Error);
      return DROPPING;
    }
  } else fd = to;
  const dest = pino.destination({ dest: fd, sync: false, minLength: 4096 });
  let failed = false;
  dest.on('error', (err: Error) => {
    // A file that cannot be opened or written: said once, and the lines are dropped rather
    // than the proxy stopped.
    if (failed) return;
    failed = true;
    try {
      dest.destroy();
    } catch {
      /* already closed */
    }
    onError?.(err);
  });
  // Lines are joined here and handed over in batches: the destination measures the byte
  // length of its whole pending buffer on every write, which per line cost more than the rest.
  let batch = '';
  const handOver = (): void => {
    if (batch.length === 0) return;
    if (!failed) dest.write(batch);
    batch = '';
  };
  setInterval(() => {
    handOver();
    if (failed) return;
    // flush() throws while the destination is still opening; the next tick retries.
    try {
      dest.flush();
    } catch {
      /* not ready yet */
    }
  }, FLUSH_MS).unref();
  process.once('exit', () => {
    handOver();
    if (failed) return;
    try {
      dest.flushSync();
    } catch {
      /* nothing more can be done while exiting */
    }
  });
  const line = (lvl: number, obj: object, msg: string): void => {
    if (lvl < min) return;
    let text = `{"level":${lvl},"time":${Math.round(performance.timeOrigin + performance.now())},"name":"trellis","component":"access"`;
    const o = obj as Record<string, unknown>;
    for (const k in o) {
      const v = o[k];
      switch (typeof v) {
        case 'string':
          text += `,"${k}":${str(v)}`;
          break;
        case 'number':
          text += `,"${k}":${Number.isFinite(v) ? v : 'null'}`;
          break;
        case 'boolean':
          text += `,"${k}":${v}`;
          break;
        case 'undefined':
        case 'function':
        case 'symbol':
          break;
        default:
          text += `,"${k}":${JSON.stringify(v) ?? 'null'}`;
      }
    }
    batch += `${text},"msg":${str(msg)}}\n`;
    if (batch.length >= BATCH) handOver();
  };
  return {
    request(r) {
      if (min > 30) return;
      batch +=
        `{"level":30,"time":${Math.round(performance.timeOrigin + performance.now())},` +
        `"name":"trellis","component":"access","direction":${str(r.direction)},` +
        `"source_service":${str(r.source)},"destination_service":${str(r.destination)},` +
        `"protocol":${str(r.protocol)},"method":${str(r.method)},"path":${str(r.path)},` +
        `"response_code":${r.status},"response_flags":${str(r.flags)},` +
        `"duration_ms":${Math.round(r.durationMs * 1000) / 1000},"bytes_in":${r.bytesIn},` +
        `"bytes_out":${r.bytesOut},"upstream":${str(r.upstream)},"msg":"request"}\n`;
      if (batch.length >= BATCH) handOver();
    },
    info: (obj, msg) => line(30, obj, msg),
    warn: (obj, msg) => line(40, obj, msg),
    error: (obj, msg) => line(50, obj, msg),
  };
}
