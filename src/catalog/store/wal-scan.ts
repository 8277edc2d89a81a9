/**
 * Reads one segment's bytes and decides what is intact, what is a torn tail and what is
 * corruption. The rule: damage is a torn tail only in the last segment and only when no intact
 * record follows it anywhere in the file; then nothing after the damage was ever acknowledged
 * (an acknowledged record is whole on disk). Any other damage would mean dropping acknowledged
 * writes, so it is reported as corruption and the store refuses to start.
 */
import { storageError, type MeshError } from '../../core/errors.js';
import type { LogEntry } from './types.js';
import {
  SEGMENT_HEADER_BYTES,
  decodeSegmentHeader,
  findIntactRecord,
  isZeroFilled,
  readRecordAt,
} from './wal-format.js';

export interface SegmentScan {
  /** Index of the last entry written before this segment (from its header). */
  prev: number;
  entries: LogEntry[];
  /** Index of the last intact entry, or prev when there is none. */
  lastIndex: number;
  /** Bytes of intact data; the file is truncated here when a tail was torn. */
  validLength: number;
  /** Set when a torn tail was found at validLength. */
  torn: { reason: string; droppedBytes: number } | null;
  /** The header itself was torn (a segment created just before a crash): delete the file. */
  unusable: boolean;
}

export function scanSegment(buf: Buffer, path: string, isLast: boolean): SegmentScan {
  const header = decodeSegmentHeader(buf);
  if ('problem' in header) {
    const intact = findIntactRecord(buf, 0);
    if (!isLast || intact !== -1) throw corruption(path, 0, header.problem, 0, intact);
    return {
      prev: 0,
      entries: [],
      lastIndex: 0,
      validLength: 0,
      torn: { reason: header.problem, droppedBytes: buf.length },
      unusable: true,
    };
  }

  const entries: LogEntry[] = [];
  let lastIndex = header.prev;
  let off = SEGMENT_HEADER_BYTES;
  let torn: SegmentScan['torn'] = null;
  while (off < buf.length) {
    const recordNo = entries.length + 1;
    const read = readRecordAt(buf, off);
    if (read.kind === 'ok') {
      if (read.entry.index <= lastIndex) {
        const why = `index ${read.entry.index} does not follow index ${lastIndex}`;
        throw corruption(path, off, why, recordNo, -1);
      }
      entries.push(read.entry);
      lastIndex = read.entry.index;
      off = read.end;
      continue;
    }
    if (read.kind === 'invalid') throw corruption(path, off, read.reason, recordNo, -1);
    const intact = findIntactRecord(buf, off + 1);
    if (!isLast || intact !== -1) throw corruption(path, off, read.reason, recordNo, intact);
    const reason = isZeroFilled(buf, off) ? 'zero-filled tail' : read.reason;
    torn = { reason, droppedBytes: buf.length - off };
    break;
  }
  return { prev: header.prev, entries, lastIndex, validLength: off, torn, unusable: false };
}

function corruption(
  path: string,
  offset: number,
  reason: string,
  recordNo: number,
  intactAt: number,
): MeshError {
  const what = recordNo > 0 ? `${reason} (record ${recordNo})` : reason;
  const behind = intactAt >= 0 ? `, with intact records after it (offset ${intactAt})` : '';
  return storageError(
    `corrupt write-ahead log ${path} at offset ${offset}: ${what}${behind}; refusing to start. ` +
      'Restore the directory from a backup, or move this file and every later wal-*.log file ' +
      'out of the directory to start from the last snapshot and the entries before this file ' +
      '(the writes in the moved files are lost).',
  );
}
