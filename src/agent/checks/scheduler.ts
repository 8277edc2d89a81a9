/**
 * CheckScheduler owns the agent's running checks: it runs each probe every Interval (after a
 * random stagger so checks registered together do not fire together), applies the threshold
 * counters, keeps TTL timers, recomputes alias checks when told local state changed
 * (refreshAliases), and reports each change of status or output through onChange.
 * A check never has two runs in flight, and nothing thrown by a runner escapes a timer.
 */
import type { Clock, Random, Timer } from '../../core/index.js';
import {
  badRequest,
  conflict,
  describeError,
  jitter,
  notFound,
  systemClock,
  systemRandom,
} from '../../core/index.js';
import type { CheckType, HealthStatus } from '../../api/index.js';
import type {
  CheckChangeHandler,
  CheckResult,
  CheckRunner,
  CheckState,
  ProbeKind,
} from './types.js';
import type { CheckPlan } from './definition.js';
import { DEFAULT_MIN_INTERVAL_MS, planCheck } from './definition.js';
import { ThresholdFilter } from './thresholds.js';
import { TtlCheck } from './ttl.js';
import { HttpCheck } from './http.js';
import { TcpCheck } from './tcp.js';
import { GrpcCheck } from './grpc.js';
import { ScriptCheck } from './script.js';
import { aliasResult, type AliasSource } from './alias.js';

export type RunnerFactory = (def: CheckType, kind: ProbeKind, clock: Clock) => CheckRunner;

export interface CheckSchedulerOptions {
  onChange: CheckChangeHandler;
  clock?: Clock;
  random?: Random;
  /** Script checks run arbitrary commands, so they are off unless the operator opts in. */
  enableScriptChecks?: boolean;
  /** Intervals below this are raised to it; Consul's floor is 1s. */
  minIntervalMs?: number;
  /** Builds a probe's runner; the default picks the runner of its kind. */
  createRunner?: RunnerFactory;
  /** Where alias checks read the aliased service; without it they stay at their first status. */
  aliasSource?: AliasSource;
}

export const createRunner: RunnerFactory = (def, kind, clock) => {
  switch (kind) {
    case 'http':
      return new HttpCheck({ ...def, HTTP: def.HTTP! }, clock);
    case 'tcp':
      return new TcpCheck({ TCP: def.TCP! }, clock);
    case 'grpc':
      return new GrpcCheck({ ...def, GRPC: def.GRPC! }, clock);
    case 'script':
      return new ScriptCheck({ ...def, ScriptArgs: def.ScriptArgs! }, clock);
  }
};

/** Alias chains deeper than this settle on the next change of local state. */
const MAX_ALIAS_PASSES = 8;

interface Entry {
  id: string;
  plan: CheckPlan;
  result: CheckResult;
  /** Bumped by update(), so a run of the old definition cannot record its result. */
  generation: number;
  removed: boolean;
  runner?: CheckRunner;
  filter?: ThresholdFilter;
  ttl?: TtlCheck;
  /** The service id an alias check follows. */
  alias?: string;
  timer?: Timer;
  inflight?: Promise<void>;
  abort?: AbortController;
}

export class CheckScheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly minIntervalMs: number;
  private readonly makeRunner: RunnerFactory;
  private refreshing = false;
  private refreshAgain = false;

  constructor(private readonly opts: CheckSchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.minIntervalMs = opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
    this.makeRunner = opts.createRunner ?? createRunner;
  }

  /**
   * Starts running a check. Its state starts as `initialStatus`, else def.Status, else
   * critical; onChange reports changes from there. Throws a user MeshError for a bad
   * definition, a script check while those are disabled, or an id already in use.
   */
  add(id: string, def: CheckType, initialStatus?: HealthStatus): CheckState {
    if (this.entries.has(id)) throw conflict(`Check "${id}" is already registered`);
    const plan = this.plan(def);
    const entry: Entry = {
      id,
      plan,
      result: { status: initialStatus ?? def.Status ?? 'critical', output: '' },
      generation: 0,
      removed: false,
    };
    this.start(entry, def);
    this.entries.set(id, entry);
    return this.state(entry);
  }

  /**
   * Replaces a check's definition, keeping its current status and output so the catalog does
   * not flap; counters restart. A run of the old definition in flight is cancelled.
   */
  update(id: string, def: CheckType): CheckState {
    const entry = this.entry(id);
    const plan = this.plan(def);
    this.halt(entry);
    entry.generation++;
    entry.plan = plan;
    this.start(entry, def);
    return this.state(entry);
  }

  /** Stops and forgets a check; returns false when there was none. */
  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    entry.removed = true;
    this.halt(entry);
    this.entries.delete(id);
    return true;
  }

  /** Records a TTL check's report (Consul's pass/warn/fail with a note). */
  ttlUpdate(id: string, status: HealthStatus, note = ''): CheckState {
    const entry = this.entry(id);
    if (!entry.ttl) throw badRequest(`Check "${id}" is not a TTL check`);
    entry.ttl.update(status, note);
    return this.state(entry);
  }

  /**
   * Recomputes every alias check from the alias source; call after each change of local
   * state. A change it reports may change local state again: such nested calls are folded
   * into another pass of the outer one.
   */
  refreshAliases(): void {
    const source = this.opts.aliasSource;
    if (!source) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      // Bounded: aliases that (indirectly) alias each other must not spin.
      for (let pass = 0; pass < MAX_ALIAS_PASSES; pass++) {
        this.refreshAgain = false;
        for (const entry of [...this.entries.values()]) {
          if (entry.alias === undefined) continue;
          this.record(entry, aliasResult(entry.alias, source(entry.alias)));
        }
        if (!this.refreshAgain) break;
      }
    } finally {
      this.refreshing = false;
    }
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get(id: string): CheckState | undefined {
    const entry = this.entries.get(id);
    return entry && this.state(entry);
  }

  list(): CheckState[] {
    return [...this.entries.values()].map((e) => this.state(e));
  }

  /** Removes every check and waits for runs in flight (cancelled) to finish. */
  async stop(): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      if (entry.inflight) pending.push(entry.inflight);
      this.remove(entry.id);
    }
    await Promise.all(pending);
  }

  private plan(def: CheckType): CheckPlan {
    const plan = planCheck(def, this.minIntervalMs);
    if (plan.kind === 'script' && !this.opts.enableScriptChecks) {
      throw badRequest(
        'Script checks are disabled on this agent; start the agent with --enable-script-checks to allow them',
        'ScriptArgs',
      );
    }
    return plan;
  }

  private entry(id: string): Entry {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(`Unknown check ID "${id}"`);
    return entry;
  }

  private state(e: Entry): CheckState {
    return { id: e.id, kind: e.plan.kind, ...e.result };
  }

  private start(entry: Entry, def: CheckType): void {
    const { plan } = entry;
    entry.alias = undefined;
    if (plan.kind === 'alias') {
      // Nothing runs: refreshAliases() sets the result once the owner's state is in place.
      entry.runner = undefined;
      entry.filter = undefined;
      entry.ttl = undefined;
      entry.alias = def.AliasService;
      return;
    }
    if (plan.kind === 'ttl') {
      entry.runner = undefined;
      entry.filter = undefined;
      entry.ttl = new TtlCheck({
        ttlMs: plan.ttlMs,
        clock: this.clock,
        initial: entry.result,
        outputMaxSize: plan.outputMaxSize,
        onResult: (r) => this.record(entry, r),
      });
      entry.ttl.start();
      return;
    }
    entry.ttl = undefined;
    entry.runner = this.makeRunner(def, plan.kind, this.clock);
    entry.filter = new ThresholdFilter(plan.thresholds);
    // a run of the previous definition still in flight re-arms the timer when it settles
    if (!entry.inflight) this.arm(entry, jitter(this.random, plan.intervalMs));
  }

  /** Stops timers and cancels a run in flight; the entry can be started again. */
  private halt(entry: Entry): void {
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.abort?.abort();
    entry.ttl?.stop();
  }

  private arm(entry: Entry, delayMs: number): void {
    if (entry.removed || !entry.runner || entry.timer !== undefined) return;
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      this.runOnce(entry);
    }, delayMs);
  }

  private runOnce(entry: Entry): void {
    const runner = entry.runner;
    if (entry.removed || entry.inflight || !runner) return;
    const generation = entry.generation;
    const abort = new AbortController();
    entry.abort = abort;
    entry.inflight = (async () => {
      let result: CheckResult;
      try {
        result = await runner.run(entry.plan.timeoutMs, abort.signal);
      } catch (err) {
        result = { status: 'critical', output: describeError(err) };
      }
      entry.inflight = undefined;
      entry.abort = undefined;
      if (entry.removed) return;
      if (generation === entry.generation) {
        const accepted = entry.filter?.accept(result);
        if (accepted) this.record(entry, accepted);
        this.arm(entry, entry.plan.intervalMs);
      } else {
        this.arm(entry, jitter(this.random, entry.plan.intervalMs));
      }
    })();
  }

  /** Stores a result and reports it when status or output changed. */
  private record(entry: Entry, result: CheckResult): void {
    if (entry.removed) return;
    const prev = entry.result;
    if (prev.status === result.status && prev.output === result.output) return;
    entry.result = { status: result.status, output: result.output };
    try {
      this.opts.onChange(entry.id, { ...entry.result });
    } catch {
      // a failing listener must not stop the checks; it sees the next change again
    }
  }
}
