/**
 * pino loggers: JSON lines on stderr by default, secrets redacted. One root logger per process;
 * components take children with a `component` binding.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'trellis',
      level: opts.level ?? 'info',
      redact: {
        paths: ['token', '*.token', 'headers["x-consul-token"]', 'SecretID', '*.SecretID'],
        censor: '[redacted]',
      },
      base: undefined,
    },
    pino.destination(2),
  );
}

/** How often buffered access-log lines are written out, at the latest. */
const ACCESS_LOG_FLUSH_MS = 500;

/**
 * The proxies' access log: JSON lines on stderr, like the root logger, but written
 * asynchronously in batches of about 4 KiB (and at least every 500 ms), so a proxied request
 * does not pay a write system call for its line. Lines still buffered are written when the
 * process exits.
 */
export function createAccessLogger(level = 'info'): Logger {
  const dest = pino.destination({ dest: 2, sync: false, minLength: 4096 });
  setInterval(() => {
    // flush() throws while the destination is still opening; the next tick retries.
    try {
      dest.flush();
    } catch {
      /* not ready yet */
    }
  }, ACCESS_LOG_FLUSH_MS).unref();
  return pino({ name: 'trellis', level, base: undefined }, dest).child({
    component: 'access',
  });
}

/**
 * The audit logger: a child with `component: "audit"` that writes at info whatever the
 * process's --log-level, so refusals and CA operations are always on record.
 */
export function auditLogger(log: Logger): Logger {
  return log.child({ component: 'audit' }, { level: 'info' });
}
