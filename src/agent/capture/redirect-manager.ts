/**
 * Owns the host's `inet trellis` table for the agent: merges the transparent sidecars'
 * captures into one ruleset, applies it atomically whenever it changes, puts it back when
 * someone flushes or edits it (drift, checked every few seconds, logged), and keeps the last
 * applied plan in the data dir so a restarted agent restores it before its proxies are up.
 *
 * The rules outlive the agent on purpose: with the agent dead, captured connections are
 * redirected to listeners that are gone and are refused, never sent in plaintext (fail
 * closed). `pause()` (`trellis redirect-traffic --remove`) is the explicit undo.
 *
 * A plan that cannot be applied (unknown user, nft missing or refusing) changes nothing: the
 * previous ruleset stays in force and the error is kept for `trellis redirect-traffic --status`.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../../core/index.js';
import type { ApplyResult, NftStatus } from '../nftables/nft.js';
import { renderRuleset, wholeFile, type RedirectPlan } from '../nftables/ruleset.js';
import { cgroupInode } from './cgroups.js';
import { buildRedirectPlan } from './redirect-plan.js';
import type { SidecarCapture } from './types.js';
import { makeDirs } from '../../core/make-dirs.js';

/** The subset of NftApplier the manager uses (tests may run it in a network namespace). */
export interface Applier {
  apply(plan: RedirectPlan): Promise<ApplyResult>;
  remove(): Promise<void>;
  status(plan: RedirectPlan): Promise<NftStatus>;
  /** The live table's listing, undefined when there is none. */
  live(): Promise<string | undefined>;
}

interface Logger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface RedirectManagerOptions {
  applier: Applier;
  /** Where the last applied plan and the paused flag are kept (JSON, 0600). */
  stateFile: string;
  proxyUid: number;
  dnsPort?: number;
  agentPorts: number[];
  lookupUid: (user: string) => Promise<number | undefined>;
  /** The inode of a capture cgroup, undefined when it does not exist (default: cgroups.ts). */
  cgroupInode?: (path: string) => Promise<number | undefined>;
  clock: Clock;
  log: Logger;
  /** How often the live table is compared with the applied one (default 2000 ms). */
  driftEveryMs?: number;
  /** Told when the wanted ruleset stops being, or is again, in force (the error, or undefined). */
  onError?: (error: string | undefined) => void;
}

interface SavedState {
  paused: boolean;
  plan?: RedirectPlan;
}

export interface RedirectInfo {
  paused: boolean;
  /** The plan in force (last applied), if any. */
  plan?: RedirectPlan;
  /** Its nft text. */
  ruleset?: string;
  appliedAt?: number;
  /** Why the wanted ruleset is not in force, if it is not. */
  lastError?: string;
  /** Drift repairs since the agent started. */
  repairs: number;
}

export class RedirectManager {
  readonly #o: RedirectManagerOptions;
  #paused = false;
  /** The plan in force: applied by us, or restored from the data dir. */
  #applied: RedirectPlan | undefined;
  #appliedText: string | undefined;
  #appliedAt: number | undefined;
  #lastError: string | undefined;
  #repairs = 0;
  #captures: readonly SidecarCapture[] = [];
  /** Capture cgroup -> inode when the ruleset in force was loaded (nft keeps the id). */
  #appliedCgroups = new Map<string, number>();
  #expected = 0;
  #chain: Promise<void> = Promise.resolve();
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #debounce: ReturnType<Clock['setTimeout']> | undefined;
  #stopped = false;

  constructor(opts: RedirectManagerOptions) {
    this.#o = opts;
  }

  /** Restores the saved ruleset (unless paused) and starts watching for drift. */
  async start(): Promise<void> {
    const saved = this.#load();
    this.#paused = saved.paused;
    if (!saved.paused && saved.plan) {
      await this.#serial(async () => {
        await this.#apply(saved.plan!, 'restored from the data dir');
      });
    }
    this.#scheduleDrift();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    if (this.#debounce) this.#o.clock.clearTimeout(this.#debounce);
  }

  /**
   * The transparent sidecars' current captures. `expected` is how many transparent sidecars
   * there are: until each has reported, a restored ruleset is not replaced by a partial one.
   */
  update(captures: readonly SidecarCapture[], expected: number): void {
    this.#captures = captures;
    this.#expected = expected;
    if (this.#debounce) this.#o.clock.clearTimeout(this.#debounce);
    // Endpoint changes come in bursts; one apply for the burst.
    this.#debounce = this.#o.clock.setTimeout(() => void this.reconcile(), 50);
  }

  /** Applies the wanted ruleset if it differs from the one in force. */
  reconcile(): Promise<void> {
    return this.#serial(async () => {
      if (this.#paused || this.#stopped) return;
      // Until each transparent sidecar has a plan, a restored ruleset is not replaced by a
      // partial one; with nothing restored, whatever is known is applied.
      if (this.#captures.length < this.#expected && (this.#applied || !this.#captures.length))
        return;
      if (this.#expected === 0 && this.#captures.length === 0) {
        if (this.#applied) await this.#removeTable('no transparent sidecars left');
        return;
      }
      const wanted = await this.#wanted();
      if ('error' in wanted) {
        this.#fail(wanted.error);
        return;
      }
      const sameCgroups =
        JSON.stringify([...wanted.cgroups]) === JSON.stringify([...this.#appliedCgroups]);
      if (wanted.text === this.#appliedText && sameCgroups) {
        this.#setError(undefined);
        return;
      }
      if (
        await this.#apply(
          wanted.plan,
          sameCgroups ? 'applied' : 'applied (capture cgroups changed)',
          wanted.text,
        )
      )
        this.#appliedCgroups = wanted.cgroups;
    });
  }

  /** The plan and nft text the agent would apply now (nothing is applied). */
  async dryRun(): Promise<{ plan: RedirectPlan; text: string } | { error: string }> {
    const wanted = await this.#wanted();
    if ('error' in wanted) return wanted;
    try {
      return { plan: wanted.plan, text: wholeFile(wanted.plan) };
    } catch (err) {
      return { error: String((err as Error).message) };
    }
  }

  /** Whether captured users' outbound traffic is being redirected (DNS answers VIPs then). */
  get capturing(): boolean {
    return !this.#paused && (this.#applied?.outbound.length ?? 0) > 0;
  }

  info(): RedirectInfo {
    return {
      paused: this.#paused,
      ...(this.#applied ? { plan: this.#applied, ruleset: this.#appliedText } : {}),
      ...(this.#appliedAt !== undefined ? { appliedAt: this.#appliedAt } : {}),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      repairs: this.#repairs,
    };
  }

  /**
   * The live table against the one in force. With none in force the live table is still looked
   * at: one left there (by an earlier run, or an apply that failed) is reported, not hidden.
   */
  status(): Promise<NftStatus & { error?: string }> {
    return this.#serialResult(async () => {
      try {
        if (this.#applied) return await this.#o.applier.status(this.#applied);
        const live = await this.#o.applier.live();
        if (live === undefined) return { state: 'absent' as const };
        const lines = live.split('\n').filter((l) => l.trim() !== '');
        return { state: 'drifted' as const, diff: lines.map((l) => `+ ${l.trim()}`).join('\n') };
      } catch (err) {
        return { state: 'unknown' as const, error: String((err as Error).message) };
      }
    });
  }

  /** Removes the table and stops applying until resume(); survives restarts. */
  pause(): Promise<void> {
    return this.#serial(async () => {
      await this.#o.applier.remove();
      this.#applied = undefined;
      this.#appliedText = undefined;
      this.#appliedAt = undefined;
      this.#appliedCgroups = new Map();
      this.#paused = true;
      this.#setError(undefined);
      this.#save();
      this.#o.log.info({}, 'nftables ruleset removed; capture paused until resumed');
    });
  }

  async resume(): Promise<void> {
    await this.#serial(async () => {
      this.#paused = false;
      this.#save();
    });
    await this.reconcile();
  }

  async #wanted(): Promise<
    { plan: RedirectPlan; text: string; cgroups: Map<string, number> } | { error: string }
  > {
    const uids = new Map<string, number>();
    const cgroups = new Map<string, number>();
    for (const c of [...this.#captures].sort((a, b) => (a.sidecarId < b.sidecarId ? -1 : 1))) {
      const cg = c.settings.captureCgroup;
      if (cg === undefined || cgroups.has(cg)) continue;
      try {
        const ino = await (this.#o.cgroupInode ?? cgroupInode)(cg);
        if (ino !== undefined) cgroups.set(cg, ino);
      } catch (err) {
        return { error: `${c.sidecarId}: ${(err as Error).message}` };
      }
    }
    for (const c of this.#captures) {
      const user = c.settings.captureUser;
      if (user === undefined || uids.has(user)) continue;
      try {
        const uid = await this.#o.lookupUid(user);
        if (uid !== undefined) uids.set(user, uid);
      } catch (err) {
        return { error: String((err as Error).message) };
      }
    }
    const r = buildRedirectPlan(this.#captures, {
      proxyUid: this.#o.proxyUid,
      uids,
      cgroups: new Set(cgroups.keys()),
      agentPorts: this.#o.agentPorts,
      ...(this.#o.dnsPort !== undefined ? { dnsPort: this.#o.dnsPort } : {}),
    });
    if ('error' in r) return r;
    try {
      // Rendering validates the plan; the text is what `reconcile` compares.
      return { plan: r.plan, text: renderRuleset(r.plan), cgroups };
    } catch (err) {
      return { error: String((err as Error).message) };
    }
  }

  async #apply(plan: RedirectPlan, what: string, text?: string): Promise<boolean> {
    const started = this.#o.clock.now();
    try {
      await this.#o.applier.apply(plan);
    } catch (err) {
      this.#fail(`applying the nftables ruleset: ${(err as Error).message}`);
      return false;
    }
    this.#applied = plan;
    this.#appliedText = text ?? renderRuleset(plan);
    this.#appliedAt = this.#o.clock.now();
    this.#setError(undefined);
    this.#save();
    this.#o.log.info(
      {
        ms: this.#appliedAt - started,
        captured_users: plan.outbound.length,
        outbound_targets: plan.outbound.reduce(
          (n, o) => n + o.targets.length + (o.vips?.length ?? 0),
          0,
        ),
        inbound_ports: plan.inbound.length,
      },
      `nftables ruleset ${what}`,
    );
    return true;
  }

  async #removeTable(why: string): Promise<void> {
    try {
      await this.#o.applier.remove();
    } catch (err) {
      this.#fail(`removing the nftables ruleset: ${(err as Error).message}`);
      return;
    }
    this.#applied = undefined;
    this.#appliedText = undefined;
    this.#appliedAt = undefined;
    this.#appliedCgroups = new Map();
    this.#save();
    this.#o.log.info({ why }, 'nftables ruleset removed');
  }

  #fail(error: string): void {
    // Logged once per distinct error: a bad plan is retried on every change and drift tick.
    if (error !== this.#lastError)
      this.#o.log.error({ error }, 'nftables ruleset not changed; the previous one stays in force');
    this.#setError(error);
  }

  #setError(error: string | undefined): void {
    if (error === this.#lastError) return;
    this.#lastError = error;
    this.#o.onError?.(error);
  }

  /** Why the wanted ruleset is not in force, if it is not. */
  get error(): string | undefined {
    return this.#lastError;
  }

  /**
   * Whether the ruleset in force captures for this sidecar (its inbound port, or any outbound
   * capture): a failed apply that left an older ruleset covering it has not broken it.
   */
  covers(capture: SidecarCapture | undefined): boolean {
    const plan = this.#paused ? undefined : this.#applied;
    if (!plan || !capture) return false;
    const inbound = capture.inbound;
    if (inbound)
      return plan.inbound.some((i) => i.port === inbound.port && i.toPort === inbound.toPort);
    return plan.outbound.length > 0;
  }

  #scheduleDrift(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      // A wanted ruleset that could not be applied (nft failed, unknown user) is retried
      // here too, not only on the next change; so are capture cgroups, which appear, vanish
      // and are recreated (a new id for nft) as their units start and stop.
      const usesCgroups = this.#captures.some((c) => c.settings.captureCgroup !== undefined);
      void this.#checkDrift()
        .then(() => (this.#lastError !== undefined || usesCgroups ? this.reconcile() : undefined))
        .finally(() => this.#scheduleDrift());
    }, this.#o.driftEveryMs ?? 2000);
  }

  #checkDrift(): Promise<void> {
    return this.#serial(async () => {
      if (this.#paused || this.#stopped || !this.#applied) return;
      let st: NftStatus;
      try {
        st = await this.#o.applier.status(this.#applied);
      } catch (err) {
        this.#fail(`checking the nftables ruleset: ${(err as Error).message}`);
        return;
      }
      if (st.state === 'in-sync') return;
      this.#o.log.warn(
        { state: st.state, ...(st.diff ? { diff: st.diff } : {}) },
        st.state === 'absent'
          ? 'the nftables table inet trellis was deleted; restoring it'
          : 'the nftables table inet trellis was changed; repairing it',
      );
      if (await this.#apply(this.#applied, 'repaired')) this.#repairs++;
    });
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn, fn);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  #serialResult<T>(fn: () => Promise<T>): Promise<T> {
    let out!: T;
    return this.#serial(async () => {
      out = await fn();
    }).then(() => out);
  }

  #load(): SavedState {
    try {
      const s = JSON.parse(readFileSync(this.#o.stateFile, 'utf8')) as SavedState;
      return { paused: s.paused === true, ...(s.plan ? { plan: s.plan } : {}) };
    } catch {
      return { paused: false };
    }
  }

  #save(): void {
    const state: SavedState = {
      paused: this.#paused,
      ...(this.#applied ? { plan: this.#applied } : {}),
    };
    try {
      makeDirs(dirname(this.#o.stateFile), 0o700);
      writeFileSync(`${this.#o.stateFile}.tmp`, JSON.stringify(state), { mode: 0o600 });
      renameSync(`${this.#o.stateFile}.tmp`, this.#o.stateFile);
    } catch (err) {
      this.#o.log.warn({ err: String(err) }, 'cannot save the nftables state');
    }
  }
}
