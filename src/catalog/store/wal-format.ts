/**
 * Byte layout of a write-ahead log segment (pure functions, no I/O).
 *
 *   segment = header record*
 *   header  = "TRWAL001" (8) | prev index u64 BE (8) | crc32 of the previous 16 bytes (4)
 *   record  = payload length u32 BE | crc32(payload) u32 BE | payload (JSON of {index, command})
 *
 * `prev` is the index of the last entry written before the segment was created. It chains the
 * segments together, so recovery can tell a missing segment from a gap left by a failed batch.
 */
import { crc32 } from 'node:zlib';
import type { LogEntry } from './types.js';

export const SEGMENT_MAGIC = Buffer.from('TRWAL001', 'latin1');
export const SEGMENT_HEADER_BYTES = 20;
export const RECORD_HEADER_BYTES = 8;
/** Larger lengths can only come from damage; no catalog command is anywhere near this. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Every payload is a JSON object, so its first byte is '{'. */
const OPEN_BRACE = 0x7b;

export function encodeSegmentHeader(prev: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeBigUInt64BE(BigInt(prev), 8);
  buf.writeUInt32BE(crc32(buf.subarray(0, 16)), 16);
  return buf;
}

/** Returns the header's prev index, or a reason why the header is unusable. */
export function decodeSegmentHeader(buf: Buffer): { prev: number } | { problem: string } {
  if (buf.length < SEGMENT_HEADER_BYTES) return { problem: 'incomplete segment header' };
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return { problem: 'bad segment magic' };
  if (buf.readUInt32BE(16) !== crc32(buf.subarray(0, 16))) {
    return { problem: 'segment header checksum mismatch' };
  }
  const prev = buf.readBigUInt64BE(8);
  if (prev > BigInt(Number.MAX_SAFE_INTEGER)) return { problem: 'segment header index too large' };
  return { prev: Number(prev) };
}

/** Frames one entry. Throws if the command cannot be serialized. */
export function encodeRecord(entry: LogEntry): Buffer {
  const json = JSON.stringify({ index: entry.index, command: entry.command });
  const payloadBytes = Buffer.byteLength(json);
  if (payloadBytes > MAX_RECORD_BYTES) {
    throw new Error(`entry is ${payloadBytes} bytes, more than the ${MAX_RECORD_BYTES} limit`);
  }
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadBytes);
  buf.write(json, RECORD_HEADER_BYTES, 'utf8');
  buf.writeUInt32BE(payloadBytes, 0);
  buf.writeUInt32BE(crc32(buf.subarray(RECORD_HEADER_BYTES)), 4);
  return buf;
}

export type RecordRead =
  | { kind: 'ok'; entry: LogEntry; end: number }
  /** The bytes cannot be a record written whole: candidates for a torn tail. */
  | { kind: 'damaged'; reason: string }
  /** The checksum matched but the payload is not an entry: written that way, never torn. */
  | { kind: 'invalid'; reason: string };

/** Reads the record starting at `off` (which must be < buf.length). */
export function readRecordAt(buf: Buffer, off: number): RecordRead {
  const rest = buf.length - off;
  if (rest < RECORD_HEADER_BYTES) {
    return { kind: 'damaged', reason: `incomplete record header (${rest} bytes)` };
  }
  const length = buf.readUInt32BE(off);
  if (length === 0 || length > MAX_RECORD_BYTES) {
    return { kind: 'damaged', reason: `impossible record length ${length}` };
  }
  const start = off + RECORD_HEADER_BYTES;
  const end = start + length;
  if (end > buf.length) {
    return {
      kind: 'damaged',
      reason: `incomplete record (length ${length}, ${buf.length - start} bytes present)`,
    };
  }
  const payload = buf.subarray(start, end);
  if (crc32(payload) !== buf.readUInt32BE(off + 4)) {
    return { kind: 'damaged', reason: 'checksum mismatch' };
  }
  const entry = decodePayload(payload);
  if (typeof entry === 'string') return { kind: 'invalid', reason: entry };
  return { kind: 'ok', entry, end };
}

/** Parses a checksummed payload; returns a reason string when it is not a log entry. */
function decodePayload(payload: Buffer): LogEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'payload is not valid JSON';
  }
  if (typeof value !== 'object' || value === null || !('index' in value)) {
    return 'payload is not a log entry';
  }
  const { index } = value;
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
    return 'payload has an invalid index';
  }
  return { index, command: 'command' in value ? value.command : null };
}

/**
 * Offset of the first intact record (plausible length, matching checksum) at or after `from`,
 * or -1. Used only after damage is found, to tell a torn tail from damage with data behind it.
 */
export function findIntactRecord(buf: Buffer, from: number): number {
  for (let p = from; p + RECORD_HEADER_BYTES < buf.length; p++) {
    const length = buf.readUInt32BE(p);
    const start = p + RECORD_HEADER_BYTES;
    if (length === 0 || length > MAX_RECORD_BYTES || start + length > buf.length) continue;
    if (buf[start] !== OPEN_BRACE) continue;
    if (crc32(buf.subarray(start, start + length)) === buf.readUInt32BE(p + 4)) return p;
  }
  return -1;
}

/** True when every byte from `from` on is zero (a preallocated or never-written tail). */
export function isZeroFilled(buf: Buffer, from: number): boolean {
  for (let p = from; p < buf.length; p++) if (buf[p] !== 0) return false;
  return true;
}
