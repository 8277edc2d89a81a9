/**
 * Session TTLs. Like Consul, a session with a TTL is invalidated when it has not been renewed
 * for twice its TTL (the grace half absorbs clock skew and slow renewals). Timers live in memory:
 * after a restart every TTL session gets a full period again.
 */
import { parseDuration, type Clock, type Timer } from '../core/index.js';
import type { StateStore } from './state/state-store.js';
import type { CommandLog } from './state/command-log.js';

export class SessionTimers {
  readonly #timers = new Map<string, Timer>();
  readonly #writer: CommandLog;
  readonly #clock: Clock;
  readonly #log: { warn(obj: object, msg: string): void };

  constructor(writer: CommandLog, clock: Clock, log: { warn(obj: object, msg: string): void }) {
    this.#writer = writer;
    this.#clock = clock;
    this.#log = log;
  }

  /** Arms (or re-arms, on renew) the expiry of a session. */
  reset(id: string, ttl: string): void {
    const ms = parseDuration(ttl);
    this.clear(id);
    if (!ms) return;
    const t = this.#clock.setTimeout(() => {
      this.#timers.delete(id);
      this.#writer
        .propose({ type: 'session-destroy', id, at: this.#clock.now() })
        .catch((err: unknown) => this.#log.warn({ err, session: id }, 'could not expire session'));
    }, ms * 2);
    t.unref?.();
    this.#timers.set(id, t);
  }

  clear(id: string): void {
    const t = this.#timers.get(id);
    if (t) this.#clock.clearTimeout(t);
    this.#timers.delete(id);
  }

  restoreAll(state: StateStore): void {
    for (const s of state.sessions.values()) if (s.TTL) this.reset(s.ID, s.TTL);
  }

  stop(): void {
    for (const t of this.#timers.values()) this.#clock.clearTimeout(t);
    this.#timers.clear();
  }
}
