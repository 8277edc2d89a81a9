/**
 * The file `GET /v1/snapshot` returns and `PUT /v1/snapshot` takes. Not Consul's format (a
 * gzipped tar of Raft state): a gzip of one JSON header line and the catalog state as the
 * server serializes it. The header lets a file be refused before anything changes: another
 * format, a newer version, another datacenter, a checksum that does not match.
 *
 *   gzip( {"format":"trellis-snapshot","version":1,"index":..,"datacenter":..,
 *          "bytes":..,"checksum":"sha256:<hex>"} "\n" <state JSON> )
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

export const SNAPSHOT_FORMAT = 'trellis-snapshot';
export const SNAPSHOT_VERSION = 1;
/** A gunzipped snapshot may not exceed this (a guard against gzip bombs). */
export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

export interface SnapshotHeader {
  format: string;
  version: number;
  /** The catalog index the state was captured at. */
  index: number;
  datacenter: string;
  /** Length of the state in bytes. */
  bytes: number;
  /** "sha256:<hex>" of the state bytes. */
  checksum: string;
}

export interface DecodedSnapshot {
  header: SnapshotHeader;
  /** The serialized catalog state (JSON). */
  state: Buffer;
}

/** Why a file was refused: `field` names the part of the file that is wrong. */
export interface SnapshotProblem {
  field: string;
  error: string;
}

export function encodeSnapshotFile(
  state: Buffer,
  meta: { index: number; datacenter: string },
): Buffer {
  const header: SnapshotHeader = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    index: meta.index,
    datacenter: meta.datacenter,
    bytes: state.length,
    checksum: checksumOf(state),
  };
  return gzipSync(Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), state]));
}

/**
 * Decodes and checks a snapshot file. `datacenter`, when given, must match the header's. The
 * state itself is only checked to be intact (checksum); whether it loads is the server's test.
 */
export function decodeSnapshotFile(
  file: Buffer,
  datacenter?: string,
): DecodedSnapshot | SnapshotProblem {
  if (file.length === 0) return { field: 'file', error: 'the snapshot file is empty' };
  let raw: Buffer;
  try {
    raw = gunzipSync(file, { maxOutputLength: MAX_SNAPSHOT_BYTES });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const truncated = /unexpected end/i.test(why);
    return {
      field: 'file',
      error: truncated
        ? 'the snapshot file is truncated (its gzip stream ends early)'
        : `the file is not a Trellis snapshot: not readable as gzip (${why})`,
    };
  }
  const nl = raw.indexOf(0x0a);
  if (nl < 0) return { field: 'header', error: 'the snapshot has no header line' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.subarray(0, nl).toString('utf8'));
  } catch {
    return { field: 'header', error: 'the snapshot header is not JSON' };
  }
  const problem = checkHeader(parsed, datacenter);
  if (problem) return problem;
  const header = parsed as SnapshotHeader;
  const state = raw.subarray(nl + 1);
  if (state.length !== header.bytes)
    return {
      field: 'bytes',
      error: `the snapshot is truncated or padded: its header says ${header.bytes} bytes of state, the file holds ${state.length}`,
    };
  if (checksumOf(state) !== header.checksum)
    return { field: 'checksum', error: 'the snapshot is corrupt: its checksum does not match' };
  return { header, state };
}

export function isSnapshotProblem<T extends object>(d: T | SnapshotProblem): d is SnapshotProblem {
  return 'error' in d;
}

function checkHeader(h: unknown, datacenter: string | undefined): SnapshotProblem | undefined {
  if (typeof h !== 'object' || h === null || Array.isArray(h))
    return { field: 'header', error: 'the snapshot header is not a JSON object' };
  const o = h as Record<string, unknown>;
  if (o['format'] !== SNAPSHOT_FORMAT)
    return {
      field: 'format',
      error: `the file is not a Trellis snapshot: format is ${JSON.stringify(o['format'])}, expected "${SNAPSHOT_FORMAT}"`,
    };
  if (o['version'] !== SNAPSHOT_VERSION)
    return {
      field: 'version',
      error: `snapshot version ${JSON.stringify(o['version'])} is not supported (this server reads version ${SNAPSHOT_VERSION})`,
    };
  for (const k of ['index', 'bytes'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      return { field: k, error: `the snapshot header's ${k} is not a non-negative integer` };
  }
  if (typeof o['datacenter'] !== 'string' || o['datacenter'] === '')
    return { field: 'datacenter', error: "the snapshot header's datacenter is missing" };
  if (typeof o['checksum'] !== 'string' || !o['checksum'].startsWith('sha256:'))
    return { field: 'checksum', error: "the snapshot header's checksum is missing" };
  if (datacenter !== undefined && o['datacenter'] !== datacenter)
    return {
      field: 'datacenter',
      error: `the snapshot is of datacenter "${o['datacenter']}", this cluster is datacenter "${datacenter}"`,
    };
  return undefined;
}

function checksumOf(state: Buffer): string {
  return `sha256:${createHash('sha256').update(state).digest('hex')}`;
}

/** What `trellis snapshot inspect` prints: counts read from the state. */
export interface SnapshotSummary {
  index: number;
  datacenter: string;
  /** Size of the state, uncompressed. */
  bytes: number;
  nodes: number;
  services: number;
  checks: number;
  kvKeys: number;
  sessions: number;
}

export function summarizeSnapshot(d: DecodedSnapshot): SnapshotSummary | SnapshotProblem {
  let s: unknown;
  try {
    s = JSON.parse(d.state.toString('utf8'));
  } catch {
    return { field: 'state', error: 'the snapshot state is not JSON' };
  }
  const count = (k: string): number => {
    const v = (s as Record<string, unknown> | null)?.[k];
    return Array.isArray(v) ? v.length : 0;
  };
  return {
    index: d.header.index,
    datacenter: d.header.datacenter,
    bytes: d.header.bytes,
    nodes: count('nodes'),
    services: count('services'),
    checks: count('checks'),
    kvKeys: count('kv'),
    sessions: count('sessions'),
  };
}
