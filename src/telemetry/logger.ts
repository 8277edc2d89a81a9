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

/**
 * The audit logger: a child with `component: "audit"` that writes at info whatever the
 * process's --log-level, so refusals and CA operations are always on record.
 */
export function auditLogger(log: Logger): Logger {
  return log.child({ component: 'audit' }, { level: 'info' });
}
