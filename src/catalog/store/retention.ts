/**
 * Which snapshots and segments a new snapshot makes redundant. The log is kept back to the
 * oldest snapshot we keep, not the newest: if the newest later proves unreadable, recovery falls
 * back to the older one and still finds every entry after it.
 */

/** A closed segment: it will never be written again, so its last index is final. */
export interface SegmentInfo {
  path: string;
  /** Index of its last entry, or the header's prev index when it holds none. */
  lastIndex: number;
}

export interface RetentionPlan {
  /** Snapshot indexes to keep, newest first. */
  keep: number[];
  /** Snapshot indexes to delete. */
  drop: number[];
  /** Segments whose every entry is <= this index are covered by every kept snapshot. */
  floor: number;
}

export function planRetention(snapshotIndexes: number[], keepSnapshots: number): RetentionPlan {
  const sorted = [...new Set(snapshotIndexes)].sort((a, b) => b - a);
  const keep = sorted.slice(0, Math.max(1, keepSnapshots));
  const drop = sorted.slice(keep.length);
  const floor = keep.length > 0 ? keep[keep.length - 1]! : 0;
  return { keep, drop, floor };
}
