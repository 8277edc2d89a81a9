/**
 * systemd's readiness protocol (Type=notify): `READY=1` once the process really serves, so
 * `systemctl start` returns then and units ordered after it start after it is ready;
 * `RELOADING=1` / `READY=1` around a reload and `STOPPING=1` when it begins to stop.
 *
 * The messages go to the unix datagram socket named by $NOTIFY_SOCKET, which Node cannot open,
 * so systemd's own `systemd-notify` sends them. Since systemd 246 it waits until the manager has
 * taken the message (a barrier), so the message is attributed to the unit although the sender
 * exits at once; the units say NotifyAccess=all because the sender is a child process.
 * Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
 */
import { spawn } from 'node:child_process';

export interface Notifier {
  /** Sends `fields` (e.g. `READY=1`, `STATUS=...`); resolves once sent or given up (logged). */
  send(...fields: string[]): Promise<void>;
}

interface NotifyLog {
  warn(obj: object, msg: string): void;
}

/** How long systemd-notify may take before it is given up on (the manager may be busy). */
const SEND_TIMEOUT_MS = 10_000;

/** A notifier for the process's environment: one that sends nothing unless $NOTIFY_SOCKET is set. */
export function systemdNotifier(
  env: Record<string, string | undefined>,
  log: NotifyLog,
  command = 'systemd-notify',
): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return { send: () => Promise.resolve() };
  return {
    send: (...fields) =>
      new Promise<void>((resolve) => {
        let settled = false;
        const done = (problem?: string): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (problem) log.warn({ fields, problem }, 'could not notify systemd');
          resolve();
        };
        const child = spawn(command, fields, {
          env: { ...env, NOTIFY_SOCKET: socket },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          done(`${command} did not finish in ${SEND_TIMEOUT_MS / 1000} s`);
        }, SEND_TIMEOUT_MS);
        child.once('error', (err: NodeJS.ErrnoException) =>
          done(err.code === 'ENOENT' ? `${command} not found (install systemd)` : err.message),
        );
        child.once('exit', (code) =>
          done(code === 0 ? undefined : `${command} exited ${code}: ${stderr.trim()}`),
        );
      }),
  };
}
