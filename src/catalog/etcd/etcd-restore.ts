/**
 * A restore through etcd (`PUT /v1/snapshot` on an etcd-backed server):
 *
 *   1. the receiving server puts the restored state under <prefix>/restore-data/<id>/ in 1 MiB
 *      chunks (a log entry must stay under etcd's request size limit);
 *   2. it appends the log command {type:"restore", id, chunks, bytes, sha256};
 *   3. every server, on reaching that command in the log, reads the chunks, checks them and
 *      swaps the state in; the command's revision is the new index on every server.
 *
 * The chunks stay until a stored snapshot covers the command: a server that starts later loads
 * that snapshot instead of the chunks.
 */
import { createHash } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { storageError } from '../../core/index.js';
import type { CallDeadline } from './etcd-snapshots.js';
import { padIndex, prefixEnd, type EtcdKeys } from './keys.js';

const CHUNK_BYTES = 1024 * 1024;

export interface RestoreCommand {
  type: 'restore';
  id: string;
  chunks: number;
  bytes: number;
  sha256: string;
}

export function isRestoreCommand(cmd: unknown): cmd is RestoreCommand {
  const c = cmd as Partial<RestoreCommand> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    c.type === 'restore' &&
    typeof c.id === 'string' &&
    Number.isSafeInteger(c.chunks) &&
    Number.isSafeInteger(c.bytes) &&
    typeof c.sha256 === 'string'
  );
}

/** Puts the state's chunks; returns the command that points at them. */
export async function storeRestoreData(
  client: Etcd3,
  keys: EtcdKeys,
  id: string,
  data: Buffer,
  call: CallDeadline,
): Promise<RestoreCommand> {
  const prefix = keys.restoreChunksOf(id);
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK_BYTES));
  for (let i = 0; i < chunks; i++) {
    const value = data.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
    await client.kv.put({ key: Buffer.from(`${prefix}${padIndex(i)}`), value }, call());
  }
  return {
    type: 'restore',
    id,
    chunks,
    bytes: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

/**
 * Reads the chunks a restore command points at. Returns a reason (string) when they are gone or
 * damaged, which is the same on every server; throws when etcd could not be asked (retry).
 */
export async function loadRestoreData(
  client: Etcd3,
  keys: EtcdKeys,
  cmd: RestoreCommand,
  call: CallDeadline,
): Promise<Buffer | string> {
  const prefix = keys.restoreChunksOf(cmd.id);
  const r = await client.kv.range(
    { key: Buffer.from(prefix), range_end: prefixEnd(prefix) },
    call(),
  );
  const data = Buffer.concat(r.kvs.map((kv) => kv.value));
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (r.kvs.length !== cmd.chunks || data.length !== cmd.bytes || sha256 !== cmd.sha256)
    return (
      `the restored state ${cmd.id} in etcd is missing or damaged: ${r.kvs.length}/${cmd.chunks} ` +
      `chunks, ${data.length}/${cmd.bytes} bytes (a stored snapshot may already cover it)`
    );
  return data;
}

/** Deletes a restored state's chunks (once a stored snapshot covers its command). */
export async function deleteRestoreData(
  client: Etcd3,
  keys: EtcdKeys,
  id: string,
  call: CallDeadline,
): Promise<void> {
  const prefix = keys.restoreChunksOf(id);
  try {
    await client.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }, call());
  } catch (err) {
    throw storageError(`could not delete the restored state ${id} from etcd`, err);
  }
}
