/**
 * Consul's SuccessBeforePassing / FailuresBeforeWarning / FailuresBeforeCritical: a run's result
 * only takes effect once enough consecutive runs agree, so one blip does not flap the catalog.
 * Passing and warning results count as successes.
 */
import type { CheckResult } from './types.js';
import type { Thresholds } from './definition.js';

export class ThresholdFilter {
  private successes = 0;
  private failures = 0;

  constructor(private readonly t: Thresholds) {}

  /** The result to record, or undefined while a threshold holds the current state. */
  accept(result: CheckResult): CheckResult | undefined {
    if (result.status !== 'critical') {
      this.failures = 0;
      this.successes++;
      return this.successes >= this.t.successBeforePassing ? result : undefined;
    }
    this.successes = 0;
    this.failures++;
    if (this.failures >= this.t.failuresBeforeCritical) return result;
    if (this.failures >= this.t.failuresBeforeWarning) {
      return { status: 'warning', output: result.output };
    }
    return undefined;
  }
}
