/**
 * The config-entry writes of the state machine and how they apply. Each command is first turned
 * into a plan (the entries to store and to delete), the plan is checked against the stored
 * entries (validateConfigGraph / validateConfigDelete: a router on a tcp service, or a change
 * that would break an entry depending on it, is refused), and only then applied, so a refused
 * write changes nothing. Entries arrive normalized; the HTTP layer has checked their shape.
 *
 * Intentions are sources of service-intentions entries. The intention endpoints get their own
 * commands so that "create unless the pair exists" and "replace the intention with this ID"
 * are decided atomically here, not by a read-then-write in the HTTP layer.
 *
 * Times: every intention source carries LegacyCreateTime/LegacyUpdateTime (Consul's field
 * names), set here from the command's `at`, so intentions always show CreatedAt/UpdatedAt. They
 * are owned by the server: values sent in a body are ignored.
 */
import {
  validateConfigDelete,
  validateConfigGraph,
  type ConfigEntry,
  type ConfigEntryKind,
  type ServiceIntentionsEntry,
  type SourceIntention,
} from '../../config/config-entries.js';
import type { ConfigTable, StoredIntentionsEntry } from './config-table.js';
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

/** PUT /v1/config: create or replace an entry. */
export interface ConfigSetCommand {
  type: 'config-set';
  /** Normalized (normalizeConfigEntry), without indexes. */
  entry: ConfigEntry;
  /** 0: only if the entry does not exist; N: only if its ModifyIndex is N. */
  cas?: number;
  /** Wall-clock time of the write (ms), for intention timestamps. */
  at: number;
}

/** DELETE /v1/config/:kind/:name. */
export interface ConfigDeleteCommand {
  type: 'config-delete';
  kind: ConfigEntryKind;
  name: string;
  /** Only if the entry exists with this ModifyIndex. */
  cas?: number;
}

/** One intention (a source of the destination's service-intentions entry), created or replaced. */
export interface IntentionSetCommand {
  type: 'config-intention-set';
  destination: string;
  /** Normalized; its times are set on apply. */
  source: SourceIntention;
  /** True: refuse (409) when the pair already has an intention (POST /v1/connect/intentions). */
  create: boolean;
  /** Legacy ID of the intention this write replaces; it may move to another pair. */
  replaceId?: string;
  at: number;
}

/** Deletes one intention, by its pair or by its legacy ID. */
export interface IntentionDeleteCommand {
  type: 'config-intention-delete';
  destination?: string;
  source?: string;
  id?: string;
}

export type ConfigCommand =
  ConfigSetCommand | ConfigDeleteCommand | IntentionSetCommand | IntentionDeleteCommand;

export type ConfigApplyResult =
  { ok: true; value: unknown } | { ok: false; error: string; status: number };

const fail = (error: string, status = 400): ConfigApplyResult => ({ ok: false, error, status });

/** What a command does to the table, decided before anything changes. */
interface Plan {
  puts: ConfigEntry[];
  deletes: { kind: ConfigEntryKind; name: string }[];
  value: unknown;
}

export function isConfigCommand(cmd: { type: string }): cmd is ConfigCommand {
  return cmd.type.startsWith('config-');
}

/** The checks of a config command against the current state, without applying it. */
export function validateConfig(t: ConfigTable, cmd: ConfigCommand): ConfigApplyResult | undefined {
  const p = plan(t, cmd);
  return 'ok' in p ? p : undefined;
}

export function applyConfig(
  t: ConfigTable,
  cmd: ConfigCommand,
  index: number,
  change: ChangeSet,
): ConfigApplyResult {
  const p = plan(t, cmd);
  if ('ok' in p) return p;
  for (const d of p.deletes) {
    if (!t.delete(d.kind, d.name)) continue;
    touch(d.kind, d.name, change);
  }
  for (const e of p.puts) {
    const old = t.get(e.Kind, e.Name);
    t.put({ ...e, CreateIndex: old?.CreateIndex ?? index, ModifyIndex: index });
    touch(e.Kind, e.Name, change);
  }
  return { ok: true, value: p.value };
}

function touch(kind: ConfigEntryKind, name: string, change: ChangeSet): void {
  change.keys.add(K.configKind(kind));
  change.keys.add(K.config(kind, name));
  if (kind === 'service-intentions') change.keys.add(K.intentions);
}

function plan(t: ConfigTable, cmd: ConfigCommand): Plan | ConfigApplyResult {
  let p: Plan | ConfigApplyResult;
  switch (cmd.type) {
    case 'config-set':
      p = planSet(t, cmd);
      break;
    case 'config-delete':
      p = planDelete(t, cmd);
      break;
    case 'config-intention-set':
      p = planIntentionSet(t, cmd);
      break;
    case 'config-intention-delete':
      p = planIntentionDelete(t, cmd);
      break;
  }
  if ('ok' in p) return p;
  for (const d of p.deletes) {
    const problem = validateConfigDelete(d.kind, d.name, t);
    if (problem) return fail(problem);
  }
  for (const e of p.puts) {
    const problem = validateConfigGraph(e, t);
    if (problem) return fail(problem);
  }
  return p;
}

const noChange = (value: unknown): Plan => ({ puts: [], deletes: [], value });

function planSet(t: ConfigTable, cmd: ConfigSetCommand): Plan | ConfigApplyResult {
  const e = cmd.entry;
  const old = t.get(e.Kind, e.Name);
  // A refused cas answers false, as Consul does, but a broken entry is still an error.
  const graph = validateConfigGraph(e, t);
  if (graph) return fail(graph);
  if (cmd.cas !== undefined && (cmd.cas === 0 ? old !== undefined : old?.ModifyIndex !== cmd.cas))
    return noChange(false);
  if (e.Kind !== 'service-intentions') return { puts: [e], deletes: [], value: true };
  const prev = old?.Kind === 'service-intentions' ? old : undefined;
  for (const s of e.Sources) {
    if (!s.LegacyID) continue;
    const owner = t.intentionById(s.LegacyID);
    if (owner && (owner.DestinationName !== e.Name || owner.SourceName !== s.Name))
      return fail(
        `Sources: LegacyID "${s.LegacyID}" already belongs to intention ${owner.SourceName} => ${owner.DestinationName}`,
      );
  }
  const at = iso(cmd.at);
  const sources = e.Sources.map((s) => {
    const before = prev?.Sources.find((p) => p.Name === s.Name);
    return stamp(s, before, before?.LegacyID ?? s.LegacyID, at, !!before && sameRule(before, s));
  });
  return { puts: [{ ...e, Sources: sources }], deletes: [], value: true };
}

function planDelete(t: ConfigTable, cmd: ConfigDeleteCommand): Plan {
  const old = t.get(cmd.kind, cmd.name);
  if (cmd.cas !== undefined && (!old || old.ModifyIndex !== cmd.cas)) return noChange(false);
  return old
    ? { puts: [], deletes: [{ kind: cmd.kind, name: cmd.name }], value: true }
    : noChange(true);
}

function planIntentionSet(t: ConfigTable, cmd: IntentionSetCommand): Plan | ConfigApplyResult {
  const dst = cmd.destination;
  const name = cmd.source.Name;
  const byId = cmd.replaceId !== undefined ? t.intentionById(cmd.replaceId) : undefined;
  if (cmd.replaceId !== undefined && !byId)
    return fail(`Intention with ID "${cmd.replaceId}" not found`, 404);
  const entry = t.intentionsEntry(dst);
  const existing = entry?.Sources.find((s) => s.Name === name);
  if (existing && (cmd.create || (byId && existing !== byId.source)))
    return fail(`duplicate intention found: ${name} => ${dst}`, 409);
  const newId = cmd.source.LegacyID;
  if (newId !== undefined && !byId) {
    const owner = t.intentionById(newId);
    if (owner && owner.source !== existing)
      return fail(`an intention with ID "${newId}" already exists`, 409);
  }
  const before = existing ?? byId?.source;
  const source = stamp(
    cmd.source,
    before,
    byId ? cmd.replaceId : (newId ?? before?.LegacyID),
    iso(cmd.at),
    false,
  );

  const puts: ConfigEntry[] = [];
  const deletes: Plan['deletes'] = [];
  const sources = entry ? [...entry.Sources] : [];
  if (byId && byId.entry.Name === dst) {
    sources[sources.indexOf(byId.source)] = source;
  } else {
    if (byId) dropSource(byId.entry, byId.source, puts, deletes);
    if (existing) sources[sources.indexOf(existing)] = source;
    else sources.push(source);
  }
  puts.push(intentionsEntry(dst, entry, sources));
  return { puts, deletes, value: source.LegacyID ? { ID: source.LegacyID } : true };
}

function planIntentionDelete(
  t: ConfigTable,
  cmd: IntentionDeleteCommand,
): Plan | ConfigApplyResult {
  let entry: StoredIntentionsEntry | undefined;
  let source: SourceIntention | undefined;
  if (cmd.id !== undefined) {
    const row = t.intentionById(cmd.id);
    if (!row) return fail(`Intention with ID "${cmd.id}" not found`, 404);
    ({ entry, source } = row);
  } else {
    entry = t.intentionsEntry(cmd.destination ?? '');
    source = entry?.Sources.find((s) => s.Name === cmd.source);
  }
  if (!entry || !source) return noChange(false);
  const p: Plan = { puts: [], deletes: [], value: true };
  dropSource(entry, source, p.puts, p.deletes);
  return p;
}

/** Removes one source; an entry left without sources is deleted, as Consul does. */
function dropSource(
  entry: StoredIntentionsEntry,
  source: SourceIntention,
  puts: ConfigEntry[],
  deletes: Plan['deletes'],
): void {
  const rest = entry.Sources.filter((s) => s !== source);
  if (rest.length === 0) deletes.push({ kind: 'service-intentions', name: entry.Name });
  else puts.push(intentionsEntry(entry.Name, entry, rest));
}

function intentionsEntry(
  name: string,
  old: StoredIntentionsEntry | undefined,
  sources: SourceIntention[],
): ServiceIntentionsEntry {
  return {
    Kind: 'service-intentions',
    Name: name,
    ...(old?.Meta ? { Meta: old.Meta } : {}),
    Sources: sources,
  };
}

/** The source as stored: server-owned ID and times, in a fixed key order. */
function stamp(
  s: SourceIntention,
  before: SourceIntention | undefined,
  legacyId: string | undefined,
  at: string,
  unchanged: boolean,
): SourceIntention {
  return {
    Name: s.Name,
    ...(s.Action ? { Action: s.Action } : {}),
    ...(s.Permissions ? { Permissions: s.Permissions } : {}),
    Type: 'consul',
    ...(s.Description !== undefined ? { Description: s.Description } : {}),
    ...(legacyId ? { LegacyID: legacyId } : {}),
    ...(s.LegacyMeta ? { LegacyMeta: s.LegacyMeta } : {}),
    LegacyCreateTime: before?.LegacyCreateTime ?? at,
    LegacyUpdateTime: unchanged ? (before?.LegacyUpdateTime ?? at) : at,
  };
}

/** Same rule, description and metadata: a rewrite of the entry that leaves it alone. */
function sameRule(a: SourceIntention, b: SourceIntention): boolean {
  const key = (s: SourceIntention): string =>
    JSON.stringify([s.Action, s.Permissions, s.Description, s.LegacyMeta]);
  return key(a) === key(b);
}

const iso = (ms: number): string => new Date(ms).toISOString();
