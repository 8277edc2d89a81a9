/**
 * Names of the files in a store directory. Indexes are zero-padded so that a directory listing
 * sorts in log order, but callers still sort by the parsed number.
 *   wal-<first index>.log    a write-ahead log segment (the name is a lower bound of its indexes)
 *   snapshot-<index>.snap    a complete snapshot
 *   snapshot-<index>.tmp     a snapshot being written; never valid, removed on open
 *   *.corrupt                files set aside by recovery; kept for inspection, otherwise ignored
 */
const PAD = 20;

const SEGMENT_RE = /^wal-(\d+)\.log$/;
const SNAPSHOT_RE = /^snapshot-(\d+)\.snap$/;
const SNAPSHOT_TMP_RE = /^snapshot-(\d+)\.tmp$/;

export function segmentName(firstIndex: number): string {
  return `wal-${String(firstIndex).padStart(PAD, '0')}.log`;
}

export function snapshotName(index: number): string {
  return `snapshot-${String(index).padStart(PAD, '0')}.snap`;
}

export function snapshotTmpName(index: number): string {
  return `snapshot-${String(index).padStart(PAD, '0')}.tmp`;
}

export interface DirListing {
  /** Ascending by first index. */
  segments: { name: string; firstIndex: number }[];
  /** Descending by index (newest first). */
  snapshots: { name: string; index: number }[];
  tmpFiles: string[];
}

export function classifyDir(names: string[]): DirListing {
  const listing: DirListing = { segments: [], snapshots: [], tmpFiles: [] };
  for (const name of names) {
    const seg = SEGMENT_RE.exec(name);
    if (seg) {
      listing.segments.push({ name, firstIndex: Number(seg[1]) });
      continue;
    }
    const snap = SNAPSHOT_RE.exec(name);
    if (snap) {
      listing.snapshots.push({ name, index: Number(snap[1]) });
      continue;
    }
    if (SNAPSHOT_TMP_RE.test(name)) listing.tmpFiles.push(name);
  }
  listing.segments.sort((a, b) => a.firstIndex - b.firstIndex);
  listing.snapshots.sort((a, b) => b.index - a.index);
  return listing;
}
