/**
 * Script checks: run ScriptArgs (argv, no shell). Exit 0 is passing, 1 warning, anything else
 * critical; the output is the tail of stdout and stderr together. On timeout the whole process
 * group is killed, so children the script started do not linger.
 */
import { spawn } from 'node:child_process';
import type { Clock } from '../../core/index.js';
import { describeError, systemClock } from '../../core/index.js';
import type { HealthStatus } from '../../api/index.js';
import type { CheckResult, CheckRunner, ScriptCheckDef } from './types.js';
import { TailBuffer, critical, outputMax, startDeadline } from './util.js';

export function scriptStatusFor(exitCode: number | null): HealthStatus {
  if (exitCode === 0) return 'passing';
  if (exitCode === 1) return 'warning';
  return 'critical';
}

export class ScriptCheck implements CheckRunner<'script'> {
  readonly kind = 'script' as const;

  constructor(
    private readonly def: ScriptCheckDef,
    private readonly clock: Clock = systemClock,
  ) {}

  run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
    const [command, ...args] = this.def.ScriptArgs;
    if (!command) return Promise.resolve(critical('ScriptArgs is empty'));
    const output = new TailBuffer(outputMax(this.def.OutputMaxSize));
    const deadline = startDeadline(this.clock, timeoutMs, signal);
    return new Promise<CheckResult>((resolve) => {
      // detached makes the script a process-group leader, so one kill reaches its children
      const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let settled = false;
      const settle = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        deadline.dispose();
        deadline.signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const onAbort = (): void => {
        killGroup(child.pid);
        // do not wait for the pipes: a grandchild that escaped the group could hold them open
        child.stdout.destroy();
        child.stderr.destroy();
        const why = deadline.reason() ?? 'aborted';
        const text = output.toString();
        settle(critical(`Script check ${why}${text ? `\n${text}` : ''}`));
      };
      if (deadline.signal.aborted) onAbort();
      else deadline.signal.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
      child.on('error', (err) =>
        settle(critical(`Script check failed to start: ${describeError(err)}`)),
      );
      child.on('close', (code, sig) => {
        const text = output.toString();
        const killed = code === null && sig ? `Killed by ${sig}` : '';
        settle({
          status: scriptStatusFor(code),
          output: [killed, text].filter(Boolean).join('\n'),
        });
      });
    });
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is already gone
  }
}
