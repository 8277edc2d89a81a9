/**
 * Session TTLs. Like Consul, a session with a TTL is invalidated when it has not been renewed
 * for twice its TTL (the grace half absorbs clock skew and slow renewals).
 *
 * Only the leader times sessions and proposes their destruction. It learns of creations and
 * renewals from the state as commands are applied (`StateStore.onSessionTtl`), so a session
 * created or renewed through any server counts: with several servers (etcd) a renew is a
 * `session-renew` command in the log; with the embedded store (one server, always the leader)
 * a renew only re-arms the timer, with no disk write. Timers live in memory: a server that
 * starts leading (or restarts) gives every TTL session a full period, as Consul does after an
 * election. A session destroyed twice (an old and a new leader racing) is destroyed once: the
 * second `session-destroy` finds no session and changes nothing.
 */
import { notFound, parseDuration, type Clock, type Timer } from '../core/index.js';
import type { StateStore } from './state/state-store.js';
import type { CommandLog } from './state/command-log.js';
import type { Leadership } from './leadership.js';

export interface SessionTimersOptions {
  state: StateStore;
  writer: CommandLog;
  leadership: Leadership;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Renewals go through the log (several servers) instead of re-arming here only. */
  renewThroughLog: boolean;
}

export class SessionTimers {
  readonly #timers = new Map<string, Timer>();
  readonly #o: SessionTimersOptions;
  /** True while this server leads and its timers are armed. */
  #armed = false;
  #started = false;

  constructor(opts: SessionTimersOptions) {
    this.#o = opts;
  }

  /** Follows the state and the leadership from now on. */
  start(): void {
    this.#started = true;
    this.#o.state.onSessionTtl = (id, ttl) => {
      if (!this.#armed) return;
      if (ttl === undefined) this.#clear(id);
      else this.#arm(id, ttl);
    };
    this.#o.leadership.onChange(() => this.#follow());
    this.#follow();
  }

  /**
   * A client renewed a session (it exists, the caller checked). Resolves once the renewal
   * counts; rejects like a write when the log refuses it.
   */
  async renew(id: string, ttl: string): Promise<void> {
    if (!this.#o.renewThroughLog) {
      if (this.#armed) this.#arm(id, ttl);
      return;
    }
    const r = await this.#o.writer.propose({ type: 'session-renew', id });
    // Destroyed between the caller's check and the renewal's turn in the log.
    if (!r.ok) throw notFound(r.error);
  }

  /** The whole state was replaced (a snapshot restore): every TTL session gets a full period. */
  restored(): void {
    if (!this.#started) return;
    this.#disarmAll();
    this.#follow();
  }

  stop(): void {
    this.#started = false;
    this.#o.state.onSessionTtl = undefined;
    this.#disarmAll();
  }

  /** Arms every TTL session on becoming leader; drops every timer on losing leadership. */
  #follow(): void {
    if (!this.#started) return;
    const leading = this.#o.leadership.isLeader();
    if (leading === this.#armed) return;
    if (!leading) {
      this.#disarmAll();
      return;
    }
    this.#armed = true;
    let n = 0;
    for (const s of this.#o.state.sessions.values())
      if (s.TTL) {
        this.#arm(s.ID, s.TTL);
        n++;
      }
    if (n > 0) this.#o.log.info({ sessions: n }, 'leading: every TTL session gets a full period');
  }

  #disarmAll(): void {
    this.#armed = false;
    for (const t of this.#timers.values()) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
  }

  #arm(id: string, ttl: string): void {
    const ms = parseDuration(ttl);
    this.#clear(id);
    if (!ms) return;
    const t = this.#o.clock.setTimeout(() => void this.#expire(id), ms * 2);
    t.unref?.();
    this.#timers.set(id, t);
  }

  async #expire(id: string): Promise<void> {
    this.#timers.delete(id);
    // Lost the lead since the timer was armed (the new leader has its own timers).
    if (!this.#o.leadership.isLeader()) return;
    try {
      const r = await this.#o.writer.propose({
        type: 'session-destroy',
        id,
        at: this.#o.clock.now(),
      });
      if (r.ok && r.value === true)
        this.#o.log.info({ session: id }, 'session TTL expired; session destroyed');
    } catch (err) {
      // etcd refused it (no quorum?): try again while this server still leads.
      this.#o.log.warn({ err, session: id }, 'could not expire session; will retry');
      if (!this.#armed || !this.#o.state.sessions.has(id)) return;
      const t = this.#o.clock.setTimeout(() => void this.#expire(id), 5_000);
      t.unref?.();
      this.#timers.set(id, t);
    }
  }

  #clear(id: string): void {
    const t = this.#timers.get(id);
    if (t) this.#o.clock.clearTimeout(t);
    this.#timers.delete(id);
  }
}
