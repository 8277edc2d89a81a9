/**
 * TTL checks: the application reports its own state (pass/warn/fail with a note); if no report
 * arrives within the TTL the check turns critical with "TTL expired".
 */
import type { Clock, Timer } from '../../core/index.js';
import type { HealthStatus } from '../../api/index.js';
import type { CheckResult } from './types.js';
import { HeadBuffer, outputMax } from './util.js';

export const TTL_EXPIRED = 'TTL expired';

export interface TtlCheckOptions {
  ttlMs: number;
  clock: Clock;
  /** Starting state; critical with no output unless given. */
  initial?: CheckResult;
  outputMaxSize?: number;
  /** Called with every new state, from update() and from expiry. */
  onResult: (result: CheckResult) => void;
}

export class TtlCheck {
  private state: CheckResult;
  private timer: Timer | undefined;
  private stopped = false;
  private readonly maxNote: number;

  constructor(private readonly opts: TtlCheckOptions) {
    this.state = opts.initial ?? { status: 'critical', output: '' };
    this.maxNote = outputMax(opts.outputMaxSize);
  }

  get result(): CheckResult {
    return { ...this.state };
  }

  /** Arms the TTL; call once the owner is ready to hear about expiry. */
  start(): void {
    this.stopped = false;
    this.arm();
  }

  update(status: HealthStatus, note = ''): void {
    const buf = new HeadBuffer(this.maxNote);
    buf.push(Buffer.from(note, 'utf8'));
    this.set({ status, output: buf.toString() });
    if (!this.stopped) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.set({ status: 'critical', output: TTL_EXPIRED });
    }, this.opts.ttlMs);
  }

  private set(result: CheckResult): void {
    this.state = result;
    this.opts.onResult({ ...result });
  }
}
