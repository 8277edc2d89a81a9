/**
 * User events: the last EVENT_RING_SIZE events fired (Consul keeps 256 per agent). Consul spreads
 * events by gossip and keeps them only in memory; Trellis has no gossip, so an event is a logged
 * command: every server (today one, later a replicated set) holds the same ring, the ring is in
 * snapshots, and X-Consul-Index of /v1/event/list is a real index that blocking reads can wait
 * on. Agents read the ring through the servers (they forward /v1/event/list).
 */
import type { UserEvent } from '../../api/index.js';
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

export const EVENT_RING_SIZE = 256;

export interface EventFireCommand {
  type: 'event-fire';
  /** Everything but LTime, which the state machine assigns in log order. */
  event: Omit<UserEvent, 'LTime' | 'Version'>;
}

export interface EventTableState {
  ltime: number;
  events: UserEvent[];
}

export class EventTable {
  /** Oldest first. Rows are never changed in place (a snapshot may hold them). */
  #events: UserEvent[] = [];
  /** Lamport time of the last event (Consul's serf clock; here simply the event count). */
  #ltime = 0;

  get events(): readonly UserEvent[] {
    return this.#events;
  }

  fire(cmd: EventFireCommand, change: ChangeSet): UserEvent {
    const event: UserEvent = { ...cmd.event, Version: 1, LTime: ++this.#ltime };
    const next = this.#events.length >= EVENT_RING_SIZE ? this.#events.slice(1) : [...this.#events];
    next.push(event);
    this.#events = next;
    change.keys.add(K.events);
    return event;
  }

  toJSON(): EventTableState {
    return { ltime: this.#ltime, events: this.#events };
  }

  /** Snapshots written before events existed have no section: an empty ring. */
  static from(s: EventTableState | undefined): EventTable {
    const t = new EventTable();
    if (s) {
      t.#ltime = s.ltime;
      t.#events = s.events.slice(-EVENT_RING_SIZE);
    }
    return t;
  }
}
