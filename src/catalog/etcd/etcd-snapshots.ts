/**
 * Snapshots and the log as stored in etcd (layout in keys.ts): reading a consistent picture at
 * one revision, writing a snapshot so that only a newer one replaces the stored one, and deleting
 * the log entries a snapshot covers.
 */
import { createHash } from 'node:crypto';
import type { Etcd3, IKeyValue } from 'etcd3';
import { storageError } from '../../core/index.js';
import type { SnapshotData } from '../store/types.js';
import { padIndex, prefixEnd, type EtcdKeys } from './keys.js';

/** etcd refuses requests over 1.5 MiB by default: snapshots go in 1 MiB chunks. */
const CHUNK_BYTES = 1024 * 1024;
/** etcd allows 128 operations per transaction by default. */
const DELETES_PER_TXN = 100;

export interface SnapshotMeta {
  index: number;
  id: string;
  chunks: number;
  bytes: number;
  sha256: string;
}

/** One log entry as read from etcd: its index (revision), key and JSON command. */
export interface EtcdEntry {
  index: number;
  key: string;
  value: Buffer;
}

/** Call options: a deadline for each request (grpc takes an epoch in ms). */
export type CallDeadline = () => { deadline: number };

export interface EtcdPicture {
  snapshot: SnapshotData | null;
  /** Log entries with index > `after` (and > the snapshot's), ascending. */
  entries: EtcdEntry[];
  /** The revision every part was read at; a watch continues from revision + 1. */
  revision: number;
}

/**
 * The stored snapshot and the log entries after `after`, all read at one revision so that a
 * snapshot and compaction made meanwhile cannot leave a gap between them.
 */
export async function readPicture(
  client: Etcd3,
  keys: EtcdKeys,
  after: number,
  call: CallDeadline,
): Promise<EtcdPicture> {
  const head = await client.kv.range({ key: Buffer.from(keys.snapshot) }, call());
  const revision = Number(head.header.revision);
  const meta = head.kvs[0] ? parseMeta(head.kvs[0].value) : null;
  const snapshot = meta ? await readChunks(client, keys, meta, revision, call) : null;
  const from = Math.max(after, meta?.index ?? 0) + 1;
  const log = await client.kv.range(
    {
      key: Buffer.from(keys.logPrefix),
      range_end: prefixEnd(keys.logPrefix),
      revision,
      min_mod_revision: from,
    },
    call(),
  );
  return { snapshot, entries: toEntries(log.kvs), revision };
}

/** Log entries in index order; a key put more than once counts only its first put. */
export function toEntries(kvs: readonly IKeyValue[]): EtcdEntry[] {
  return kvs
    .filter((kv) => kv.version === '1')
    .map((kv) => ({ index: Number(kv.mod_revision), key: kv.key.toString(), value: kv.value }))
    .sort((a, b) => a.index - b.index);
}

/** The stored snapshot's metadata, or null when there is none. */
export async function readSnapshotMeta(
  client: Etcd3,
  keys: EtcdKeys,
  call: CallDeadline,
): Promise<SnapshotMeta | null> {
  const r = await client.kv.range({ key: Buffer.from(keys.snapshot) }, call());
  return r.kvs[0] ? parseMeta(r.kvs[0].value) : null;
}

function parseMeta(value: Buffer): SnapshotMeta {
  const text = value.toString();
  const space = text.indexOf(' ');
  try {
    const m = JSON.parse(text.slice(space + 1)) as SnapshotMeta;
    if (Number.isSafeInteger(m.index) && typeof m.id === 'string' && Number.isSafeInteger(m.chunks))
      return m;
  } catch {
    // reported below
  }
  throw storageError(`the snapshot record in etcd is unreadable: ${text.slice(0, 120)}`);
}

async function readChunks(
  client: Etcd3,
  keys: EtcdKeys,
  meta: SnapshotMeta,
  revision: number,
  call: CallDeadline,
): Promise<SnapshotData> {
  const prefix = keys.chunksOf(meta.index, meta.id);
  const r = await client.kv.range(
    { key: Buffer.from(prefix), range_end: prefixEnd(prefix), revision },
    call(),
  );
  const data = Buffer.concat(r.kvs.map((kv) => kv.value));
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (r.kvs.length !== meta.chunks || data.length !== meta.bytes || sha256 !== meta.sha256)
    throw storageError(
      `the snapshot at index ${meta.index} in etcd is damaged: ${r.kvs.length}/${meta.chunks} ` +
        `chunks, ${data.length}/${meta.bytes} bytes, checksum ${sha256 === meta.sha256 ? 'ok' : 'wrong'}`,
    );
  return { index: meta.index, data };
}

/**
 * Stores a snapshot unless etcd already holds one at the same or a later index (another server
 * may snapshot at the same time). The chunks go first; a transaction then points
 * `<prefix>/snapshot` at them only if the stored pointer is older, so a reader never sees a
 * pointer to chunks that are not all there. Returns false when a newer snapshot won.
 */
export async function writeSnapshot(
  client: Etcd3,
  keys: EtcdKeys,
  snap: SnapshotData,
  id: string,
  call: CallDeadline,
): Promise<boolean> {
  const prefix = keys.chunksOf(snap.index, id);
  const chunks = Math.max(1, Math.ceil(snap.data.length / CHUNK_BYTES));
  for (let i = 0; i < chunks; i++) {
    const value = snap.data.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
    await client.kv.put({ key: Buffer.from(`${prefix}${padIndex(i)}`), value }, call());
  }
  const meta: SnapshotMeta = {
    index: snap.index,
    id,
    chunks,
    bytes: snap.data.length,
    sha256: createHash('sha256').update(snap.data).digest('hex'),
  };
  const pointer = Buffer.from(`${padIndex(snap.index)} ${JSON.stringify(meta)}`);
  const key = Buffer.from(keys.snapshot);
  const put = [{ request_put: { key, value: pointer } }];
  // etcd cannot compare the value of a missing key, hence two shapes of the same condition.
  const absent = await client.kv.txn(
    { compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }], success: put },
    call(),
  );
  let won = absent.succeeded;
  if (!won) {
    const older = await client.kv.txn(
      {
        compare: [
          { key, target: 'Value', result: 'Less', value: Buffer.from(padIndex(snap.index)) },
        ],
        success: put,
      },
      call(),
    );
    won = older.succeeded;
  }
  if (!won) {
    await client.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }, call());
    return false;
  }
  // Chunks of every older snapshot (and of any writer that crashed half-way) go.
  await client.kv.deleteRange(
    {
      key: Buffer.from(keys.snapshotDataPrefix),
      range_end: Buffer.from(`${keys.snapshotDataPrefix}${padIndex(snap.index)}`),
    },
    call(),
  );
  return true;
}

/** Deletes the log entries with index <= `upTo` (a stored snapshot covers them). */
export async function compactLog(
  client: Etcd3,
  keys: EtcdKeys,
  upTo: number,
  call: CallDeadline,
): Promise<number> {
  const r = await client.kv.range(
    {
      key: Buffer.from(keys.logPrefix),
      range_end: prefixEnd(keys.logPrefix),
      max_mod_revision: upTo,
      keys_only: true,
    },
    call(),
  );
  for (let i = 0; i < r.kvs.length; i += DELETES_PER_TXN) {
    const ops = r.kvs
      .slice(i, i + DELETES_PER_TXN)
      .map((kv) => ({ request_delete_range: { key: kv.key } }));
    await client.kv.txn({ success: ops }, call());
  }
  return r.kvs.length;
}
