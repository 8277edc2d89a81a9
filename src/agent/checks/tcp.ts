/**
 * TCP checks: passing when a connection to host:port opens within the timeout.
 */
import net from 'node:net';
import type { Clock } from '../../core/index.js';
import { describeError, systemClock } from '../../core/index.js';
import type { CheckResult, CheckRunner, TcpCheckDef } from './types.js';
import { critical, parseHostPort, startDeadline } from './util.js';

export class TcpCheck implements CheckRunner<'tcp'> {
  readonly kind = 'tcp' as const;

  constructor(
    private readonly def: TcpCheckDef,
    private readonly clock: Clock = systemClock,
  ) {}

  run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
    const label = `TCP connect ${this.def.TCP}`;
    const target = parseHostPort(this.def.TCP);
    if (!target) return Promise.resolve(critical(`${label}: not a host:port address`));
    const deadline = startDeadline(this.clock, timeoutMs, signal);
    return new Promise<CheckResult>((resolve) => {
      const socket = net.connect({ host: target.host, port: target.port });
      const settle = (result: CheckResult): void => {
        deadline.dispose();
        deadline.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(result);
      };
      const onAbort = (): void => settle(critical(`${label}: ${deadline.reason() ?? 'aborted'}`));
      if (deadline.signal.aborted) return onAbort();
      deadline.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => settle({ status: 'passing', output: `${label}: Success` }));
      socket.once('error', (err) => settle(critical(`${label}: ${describeError(err)}`)));
    });
  }
}
