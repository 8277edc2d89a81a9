/**
 * open(): find the newest usable snapshot, read every segment, check that the log continues
 * the snapshot without a hole, and only then repair what a crash can leave behind (torn tail,
 * unfinished snapshot, unreadable snapshot). Nothing on disk changes when recovery refuses.
 */
import { join } from 'node:path';
import { storageError } from '../../core/errors.js';
import { classifyDir, type DirListing } from './file-names.js';
import type { SegmentInfo } from './retention.js';
import { decodeSnapshot } from './snapshot-file.js';
import { syncDir, truncateFile, type StoreFs } from './store-fs.js';
import type { LogEntry, Recovered, SnapshotData, StoreLogger } from './types.js';
import { scanSegment, type SegmentScan } from './wal-scan.js';

export interface RecoveryResult {
  recovered: Recovered;
  /** Segments left on disk, ascending; all closed (appends go to a new segment). */
  segments: SegmentInfo[];
  /** Snapshots on disk after repair, newest first. */
  snapshotIndexes: number[];
  /** The highest index the store has seen: appends must go above it. */
  lastIndex: number;
}

interface ScannedSegment extends SegmentScan {
  path: string;
}

interface SnapshotChoice {
  snapshot: SnapshotData | null;
  /** Unreadable snapshots newer than the chosen one. */
  unusable: { path: string; index: number; reason: string }[];
  /** Indexes of the older snapshots behind the chosen one (not read). */
  older: number[];
}

export async function recover(
  fs: StoreFs,
  dir: string,
  logger: StoreLogger,
): Promise<RecoveryResult> {
  await fs.mkdir(dir);
  const listing = classifyDir(await fs.readdir(dir));
  const choice = await chooseSnapshot(fs, dir, listing);
  const scans: ScannedSegment[] = [];
  for (const [i, seg] of listing.segments.entries()) {
    const path = join(dir, seg.name);
    const isLast = i === listing.segments.length - 1;
    scans.push({ path, ...scanSegment(await fs.readFile(path), path, isLast) });
  }
  const usable = scans.filter((s) => !s.unusable);
  const base = choice.snapshot?.index ?? 0;
  checkContinuity(usable, base, choice);

  const entries: LogEntry[] = [];
  for (const scan of usable) for (const e of scan.entries) if (e.index > base) entries.push(e);
  const warnings = await repair(fs, dir, listing, scans, choice);
  for (const msg of warnings) logger.warn({ dir }, msg);

  const lastLogIndex = usable.length > 0 ? usable[usable.length - 1]!.lastIndex : 0;
  return {
    recovered: { snapshot: choice.snapshot, entries, warnings },
    segments: usable.map((s) => ({ path: s.path, lastIndex: s.lastIndex })),
    snapshotIndexes: choice.snapshot ? [base, ...choice.older] : [],
    lastIndex: Math.max(base, lastLogIndex),
  };
}

/** The newest snapshot that reads back intact; older ones are the fallback. */
async function chooseSnapshot(
  fs: StoreFs,
  dir: string,
  listing: DirListing,
): Promise<SnapshotChoice> {
  const unusable: SnapshotChoice['unusable'] = [];
  for (const [i, snap] of listing.snapshots.entries()) {
    const path = join(dir, snap.name);
    const decoded = decodeSnapshot(await fs.readFile(path), snap.index);
    if (typeof decoded === 'string') {
      unusable.push({ path, index: snap.index, reason: decoded });
      continue;
    }
    const older = listing.snapshots.slice(i + 1).map((s) => s.index);
    return { snapshot: decoded, unusable, older };
  }
  return { snapshot: null, unusable, older: [] };
}

/**
 * The log must pick up where the snapshot ends: the first segment holding entries after the
 * snapshot must have been started at or before it, and each later segment must start where
 * the previous one ended. A hole means a segment file went missing. After falling back past an
 * unreadable snapshot, the log must also reach that snapshot's index, or its state is lost.
 */
function checkContinuity(usable: ScannedSegment[], base: number, choice: SnapshotChoice): void {
  const refuse = (problem: string): never => {
    const bad = choice.unusable.map((u) => `${u.path} (${u.reason})`).join(', ');
    const also = bad ? ` Unusable newer snapshots: ${bad}.` : '';
    throw storageError(
      `write-ahead log is incomplete: ${problem}; refusing to start.${also} ` +
        'Restore the missing files or the directory from a backup.',
    );
  };
  const lastLogIndex = Math.max(base, ...usable.map((s) => s.lastIndex));
  const newestBad = Math.max(0, ...choice.unusable.map((u) => u.index));
  if (newestBad > lastLogIndex) {
    refuse(
      `no usable snapshot or log entries cover index ${newestBad} (the log ends at ${lastLogIndex})`,
    );
  }
  const first = usable.findIndex((s) => s.lastIndex > base);
  if (first < 0) return;
  if (usable[first]!.prev > base) {
    const from = choice.snapshot ? `snapshot index ${base}` : 'the beginning (no usable snapshot)';
    refuse(
      `${usable[first]!.path} continues after index ${usable[first]!.prev} but recovery starts from ${from}`,
    );
  }
  for (let i = first + 1; i < usable.length; i++) {
    const prev = usable[i - 1]!;
    const cur = usable[i]!;
    if (cur.prev !== prev.lastIndex) {
      refuse(
        `${cur.path} continues after index ${cur.prev} but ${prev.path} ends at index ${prev.lastIndex}`,
      );
    }
  }
}

/** Makes the directory match what was recovered; returns one warning per repair. */
async function repair(
  fs: StoreFs,
  dir: string,
  listing: DirListing,
  scans: ScannedSegment[],
  choice: SnapshotChoice,
): Promise<string[]> {
  const warnings: string[] = [];
  const last = scans[scans.length - 1];
  if (last?.torn) {
    const { reason, droppedBytes } = last.torn;
    if (last.unusable) {
      await fs.unlink(last.path);
      warnings.push(
        `removed unfinished write-ahead log segment ${last.path}: ${reason} (${droppedBytes} bytes)`,
      );
    } else {
      await truncateFile(fs, last.path, last.validLength);
      warnings.push(
        `dropped torn tail of write-ahead log ${last.path} at offset ${last.validLength}: ` +
          `${reason} (${droppedBytes} bytes; a write cut short by a crash)`,
      );
    }
  }
  for (const name of listing.tmpFiles) {
    await fs.unlink(join(dir, name));
    warnings.push(`removed unfinished snapshot ${join(dir, name)}`);
  }
  for (const bad of choice.unusable) {
    await fs.rename(bad.path, `${bad.path}.corrupt`);
    const from = choice.snapshot ? `snapshot ${choice.snapshot.index}` : 'the full log';
    warnings.push(
      `snapshot ${bad.path} is unusable (${bad.reason}); moved to ${bad.path}.corrupt, recovered from ${from}`,
    );
  }
  if (warnings.length > 0) await syncDir(fs, dir);
  return warnings;
}
