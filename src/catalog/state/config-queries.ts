/**
 * Reads of config entries and of intentions (the sources of service-intentions entries, shown
 * in Consul's Intention shape). Each names the watch keys it depends on, so a blocking read of
 * one entry wakes only for writes to that entry, a list only for writes to its kind, and an
 * intention read only for intention writes.
 */
import type { Intention } from '../../api/index.js';
import type { ConfigEntryKind, SourceIntention } from '../../config/config-entries.js';
import { precedence } from '../../policy/index.js';
import type { IntentionRow, StoredConfigEntry, StoredIntentionsEntry } from './config-table.js';
import { K } from './index-table.js';
import type { QueryResult } from './queries.js';
import type { StateStore } from './state-store.js';

function result<T>(st: StateStore, keys: string[], value: T): QueryResult<T> {
  return { index: Math.max(1, st.indexes.max(keys)), value, watch: { keys } };
}

/** An entry as the API shows it: intention sources get their (read-only) Precedence. */
export function configEntryView(e: StoredConfigEntry): StoredConfigEntry {
  if (e.Kind !== 'service-intentions') return e;
  return { ...e, Sources: e.Sources.map((s) => withPrecedence(s, e.Name)) };
}

function withPrecedence(s: SourceIntention, destination: string): SourceIntention {
  const { Name, Action, Permissions, ...rest } = s;
  return {
    Name,
    ...(Action ? { Action } : {}),
    ...(Permissions ? { Permissions } : {}),
    Precedence: precedence(Name, destination),
    ...rest,
  };
}

/** One source of a service-intentions entry as Consul's Intention (api/connect_intention.go). */
export function intentionView(entry: StoredIntentionsEntry, s: SourceIntention): Intention {
  // Legacy (POST-created) intentions keep their own Meta; the others show the entry's.
  const meta = s.LegacyID ? s.LegacyMeta : entry.Meta;
  return {
    ID: s.LegacyID ?? '',
    ...(s.Description ? { Description: s.Description } : {}),
    SourceNS: 'default',
    SourceName: s.Name,
    DestinationNS: 'default',
    DestinationName: entry.Name,
    SourceType: 'consul',
    ...(s.Action ? { Action: s.Action } : {}),
    ...(s.Permissions ? { Permissions: s.Permissions } : {}),
    ...(meta && Object.keys(meta).length > 0 ? { Meta: meta } : {}),
    Precedence: precedence(s.Name, entry.Name),
    ...(s.LegacyCreateTime ? { CreatedAt: s.LegacyCreateTime } : {}),
    ...(s.LegacyUpdateTime ? { UpdatedAt: s.LegacyUpdateTime } : {}),
    CreateIndex: entry.CreateIndex,
    ModifyIndex: entry.ModifyIndex,
  };
}

export const rowView = (r: IntentionRow): Intention => intentionView(r.entry, r.source);

export function configGet(
  st: StateStore,
  kind: ConfigEntryKind,
  name: string,
): QueryResult<StoredConfigEntry | null> {
  const e = st.config.get(kind, name);
  return result(st, [K.config(kind, name)], e ? configEntryView(e) : null);
}

export function configList(
  st: StateStore,
  kind: ConfigEntryKind,
): QueryResult<StoredConfigEntry[]> {
  return result(st, [K.configKind(kind)], st.config.list(kind).map(configEntryView));
}

/** Every intention, in evaluation order (Consul lists them so). */
export function intentionList(st: StateStore): QueryResult<Intention[]> {
  return result(st, [K.intentions], st.config.intentions().map(rowView));
}

export function intentionExact(
  st: StateStore,
  source: string,
  destination: string,
): QueryResult<Intention | null> {
  const e = st.config.intentionsEntry(destination);
  const s = e?.Sources.find((x) => x.Name === source);
  return result(
    st,
    [K.config('service-intentions', destination)],
    e && s ? intentionView(e, s) : null,
  );
}

export function intentionById(st: StateStore, id: string): QueryResult<Intention | null> {
  const r = st.config.intentionById(id);
  return result(st, [K.intentions], r ? rowView(r) : null);
}

/**
 * For each name, the intentions whose source (or destination) is that name or `*`, in
 * evaluation order: what a proxy for that service would consult.
 */
export function intentionMatch(
  st: StateStore,
  by: 'source' | 'destination',
  names: readonly string[],
): QueryResult<Record<string, Intention[]>> {
  const rows = st.config.intentions();
  const out: Record<string, Intention[]> = {};
  for (const name of names) {
    out[name] = rows
      .filter((r) => {
        const n = by === 'source' ? r.SourceName : r.DestinationName;
        return n === name || n === '*';
      })
      .map(rowView);
  }
  return result(st, [K.intentions], out);
}

/** What an agent's intention cache holds: every intention and the default decision. */
export interface IntentionState {
  DefaultAllow: boolean;
  Index: number;
  Intentions: Intention[];
}

export function intentionState(st: StateStore, defaultAllow: boolean): QueryResult<IntentionState> {
  const index = Math.max(1, st.indexes.get(K.intentions));
  return {
    index,
    value: { DefaultAllow: defaultAllow, Index: index, Intentions: intentionList(st).value },
    watch: { keys: [K.intentions] },
  };
}
