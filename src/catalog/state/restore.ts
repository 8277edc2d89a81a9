/**
 * Turning a snapshot's state into the state a cluster continues from, at the restore's index.
 *
 * Indexes only go forward. The restore is applied at an index R above everything the cluster
 * has used: a watcher's X-Consul-Index never goes back, and every blocked read wakes with R.
 *   - Every watch key (those in the snapshot, those of the current state, the global tables)
 *     gets index R, since any of them may have changed.
 *   - KV reads report their keys' own indexes: a key whose current index is above its restored
 *     one (changed or added since the snapshot) gets index R (ModifyIndex, or a tombstone).
 *   - Other rows keep their CreateIndex/ModifyIndex, except that an index above R is lowered to R.
 *     That happens only when a snapshot from a store with a longer history is restored into
 *     one with a shorter (embedded server -> new etcd cluster, whose revisions start near 1);
 *     without it, later writes would get indexes below the rows' and blocking reads on those
 *     rows would miss them. A `cas` with an index read before the restore then fails, as it
 *     should: the value was replaced.
 */
import { badRequest, describeError } from '../../core/index.js';
import { K } from './index-table.js';
import { IndexTable } from './index-table.js';
import { StateStore, type SerializedState } from './state-store.js';

/** The tables whose reads have a global watch key. */
const GLOBAL_KEYS = [
  K.nodes,
  K.services,
  K.checks,
  K.sessions,
  K.kv,
  K.acl,
  K.intentions,
  K.caRoots,
  K.caConfig,
  K.events,
  K.queries,
  K.coordinates,
];

const ROW_ARRAYS = ['nodes', 'services', 'checks', 'kv', 'tombstones', 'sessions', 'indexes'];

/**
 * Parses `data` (a serialized state) and makes the state to swap in at the index `indexFor`
 * gives for the snapshot's own last index. Throws a 400 naming the problem when the data is
 * not a state this server can load; nothing is changed.
 */
export function prepareRestore(
  current: StateStore,
  data: Buffer,
  indexFor: (snapshotIndex: number) => number,
): StateStore {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw badRequest(`the snapshot state is not JSON: ${describeError(err)}`, 'state');
  }
  const s = checkShape(parsed);
  const index = indexFor(s.lastIndex);
  lowerIndexes(s, index);
  let next: StateStore;
  try {
    next = StateStore.fromSerialized(s);
  } catch (err) {
    throw badRequest(`the snapshot state cannot be loaded: ${describeError(err)}`, 'state');
  }
  const keys = new Set<string>([...current.indexes.keys(), ...next.indexes.keys(), ...GLOBAL_KEYS]);
  next.indexes = IndexTable.from([...keys].map((k) => [k, index]));
  next.lastIndex = index;
  keepKvIndexesRising(current, next, index);
  return next;
}

/**
 * KV reads report the index of the keys they read, not a watch key's: a key whose index now is
 * above its restored one gets the restore's index (its entry's ModifyIndex, or a tombstone when
 * the restored state has no such key), so no KV reader sees its index go back.
 */
function keepKvIndexesRising(current: StateStore, next: StateStore, index: number): void {
  const keys = new Set<string>([...current.kv.entries.keys(), ...current.kv.tombstones.keys()]);
  for (const key of keys) {
    if (current.kv.maxIndex(key, true) <= next.kv.maxIndex(key, true)) continue;
    const e = next.kv.entries.get(key);
    if (e) next.kv.put({ ...e, ModifyIndex: index });
    else next.kv.restore(key, undefined, index);
  }
}

function checkShape(v: unknown): SerializedState {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw badRequest('the snapshot state is not a JSON object', 'state');
  const o = v as Record<string, unknown>;
  if (o['v'] !== 1)
    throw badRequest(`the snapshot state has version ${JSON.stringify(o['v'])}, not 1`, 'state.v');
  const last = o['lastIndex'];
  if (typeof last !== 'number' || !Number.isSafeInteger(last) || last < 0)
    throw badRequest('the snapshot state has no valid lastIndex', 'state.lastIndex');
  for (const k of ROW_ARRAYS)
    if (!Array.isArray(o[k])) throw badRequest(`the snapshot state has no ${k} list`, `state.${k}`);
  return v as SerializedState;
}

/** Lowers every Raft-style index above `max` (CreateIndex, ModifyIndex, configIndex, ...). */
function lowerIndexes(s: SerializedState, max: number): void {
  if (s.lastIndex <= max) return;
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const item of x) walk(item);
      return;
    }
    if (typeof x !== 'object' || x === null) return;
    const o = x as Record<string, unknown>;
    for (const [k, val] of Object.entries(o)) {
      // LockIndex counts acquisitions; it is not a log index.
      if (typeof val === 'number' && /Index$/.test(k) && k !== 'LockIndex' && val > max) o[k] = max;
      else walk(val);
    }
  };
  const { tombstones, indexes: _replaced, ...rest } = s;
  walk(rest);
  for (const t of tombstones) if (t[1] > max) t[1] = max;
}
