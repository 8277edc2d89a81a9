/**
 * Config entries in the catalog's state machine, by kind and name, each with CreateIndex and
 * ModifyIndex. Entries are stored normalized (src/config/config-entries.ts), never with
 * Precedence (computed when read). Rows are replaced, never changed in place, so a snapshot
 * capture can hold references while writes go on.
 *
 * Intentions are the sources of service-intentions entries (one entry per destination). The
 * table keeps them flattened in evaluation order, rebuilt lazily after an intentions write, so
 * a decision or a list does not re-sort on every request.
 */
import type {
  ConfigEntry,
  ConfigEntryKind,
  ConfigEntryView,
  ServiceIntentionsEntry,
  SourceIntention,
} from '../../config/config-entries.js';
import { IntentionIndex, sortIntentions, type IntentionRule } from '../../policy/index.js';

type Indexed = { CreateIndex: number; ModifyIndex: number };

/** A stored entry: always has both indexes. */
export type StoredConfigEntry = ConfigEntry & Indexed;
export type StoredIntentionsEntry = ServiceIntentionsEntry & Indexed;

/** One intention: a source of a service-intentions entry, ready for policy's decide(). */
export interface IntentionRow extends IntentionRule {
  entry: StoredIntentionsEntry;
  source: SourceIntention;
}

export interface ConfigTableState {
  entries: StoredConfigEntry[];
}

export class ConfigTable implements ConfigEntryView {
  readonly #byKind = new Map<ConfigEntryKind, Map<string, StoredConfigEntry>>();
  #intentions: IntentionRow[] | undefined;
  #byLegacyId: Map<string, IntentionRow> | undefined;
  #byPair: IntentionIndex<IntentionRow> | undefined;

  get(kind: ConfigEntryKind, name: string): StoredConfigEntry | undefined {
    return this.#byKind.get(kind)?.get(name);
  }

  /** Every entry of a kind, by name. */
  list(kind: ConfigEntryKind): StoredConfigEntry[] {
    const m = this.#byKind.get(kind);
    if (!m) return [];
    return [...m.values()].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  }

  intentionsEntry(destination: string): StoredIntentionsEntry | undefined {
    const e = this.get('service-intentions', destination);
    return e?.Kind === 'service-intentions' ? e : undefined;
  }

  put(entry: StoredConfigEntry): void {
    let m = this.#byKind.get(entry.Kind);
    if (!m) this.#byKind.set(entry.Kind, (m = new Map()));
    m.set(entry.Name, entry);
    if (entry.Kind === 'service-intentions') this.#dropDerived();
  }

  delete(kind: ConfigEntryKind, name: string): boolean {
    const m = this.#byKind.get(kind);
    if (!m?.delete(name)) return false;
    if (m.size === 0) this.#byKind.delete(kind);
    if (kind === 'service-intentions') this.#dropDerived();
    return true;
  }

  /** Every intention, in evaluation order (precedence, then destination, then source). */
  intentions(): readonly IntentionRow[] {
    if (this.#intentions) return this.#intentions;
    const rows: IntentionRow[] = [];
    for (const e of this.#byKind.get('service-intentions')?.values() ?? []) {
      if (e.Kind !== 'service-intentions') continue;
      for (const s of e.Sources) {
        rows.push({
          ID: s.LegacyID ?? `${s.Name} => ${e.Name}`,
          SourceName: s.Name,
          DestinationName: e.Name,
          ...(s.Action ? { Action: s.Action } : {}),
          ...(s.Permissions ? { Permissions: s.Permissions } : {}),
          entry: e,
          source: s,
        });
      }
    }
    this.#intentions = sortIntentions(rows);
    return this.#intentions;
  }

  /** The intention with this legacy ID (given by POST /v1/connect/intentions). */
  intentionById(id: string): IntentionRow | undefined {
    if (!this.#byLegacyId) {
      this.#byLegacyId = new Map();
      for (const r of this.intentions())
        if (r.source.LegacyID) this.#byLegacyId.set(r.source.LegacyID, r);
    }
    return this.#byLegacyId.get(id);
  }

  /**
   * The intentions whose names match a request from `source` to `destination`, in evaluation
   * order: at most one per precedence level (exact => exact, * => exact, exact => *, * => *).
   * decide() over these gives the same answer as over every intention, without the scan.
   */
  candidates(source: string, destination: string): IntentionRow[] {
    this.#byPair ??= new IntentionIndex(this.intentions());
    return this.#byPair.candidates(source, destination);
  }

  #dropDerived(): void {
    this.#intentions = undefined;
    this.#byLegacyId = undefined;
    this.#byPair = undefined;
  }

  toJSON(): ConfigTableState {
    const entries: StoredConfigEntry[] = [];
    for (const m of this.#byKind.values()) entries.push(...m.values());
    return { entries };
  }

  /** Snapshots written before config entries existed have no section: an empty table. */
  static from(s: ConfigTableState | undefined): ConfigTable {
    const t = new ConfigTable();
    for (const e of s?.entries ?? []) t.put(e);
    return t;
  }
}
