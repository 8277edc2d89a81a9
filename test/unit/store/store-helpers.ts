/**
 * Shared helpers for the store tests: temp directories, entries, and byte-level file damage.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedStore } from '../../../src/catalog/store/embedded-store.js';
import type {
  EmbeddedStore,
  EmbeddedStoreOptions,
  LogEntry,
} from '../../../src/catalog/store/types.js';

/** Temp directories created by a suite; call cleanup() in after(). */
export class TempDirs {
  private readonly made: string[] = [];

  make(): string {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-store-'));
    this.made.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.made.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

export function entry(index: number): LogEntry {
  return { index, command: { op: 'set', key: `service/${index}`, value: { port: 8000 + index } } };
}

export function entries(from: number, to: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i));
  return out;
}

export interface RecordingLogger {
  warnings: string[];
  warn(obj: object, msg: string): void;
}

export function recordingLogger(): RecordingLogger {
  const warnings: string[] = [];
  return { warnings, warn: (_obj, msg) => warnings.push(msg) };
}

export function store(dir: string, opts: Partial<EmbeddedStoreOptions> = {}): EmbeddedStore {
  return createEmbeddedStore({ dir, ...opts });
}

/** Opens a store, appends the entries (all concurrently), closes it. */
export async function writeEntries(
  dir: string,
  list: LogEntry[],
  opts: Partial<EmbeddedStoreOptions> = {},
): Promise<void> {
  const s = store(dir, opts);
  await s.open();
  await Promise.all(list.map((e) => s.append(e)));
  await s.close();
}

export function indexes(list: LogEntry[]): number[] {
  return list.map((e) => e.index);
}

/** wal-*.log files, ascending. */
export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('wal-') && n.endsWith('.log'))
    .sort()
    .map((n) => join(dir, n));
}

export function snapshotFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.snap'))
    .sort();
}

export function fileSize(path: string): number {
  return statSync(path).size;
}

export function flipByte(path: string, offset: number): void {
  const buf = readFileSync(path);
  buf[offset] = buf[offset]! ^ 0x5a;
  writeFileSync(path, buf);
}

export function truncateBy(path: string, bytes: number): void {
  const buf = readFileSync(path);
  writeFileSync(path, buf.subarray(0, buf.length - bytes));
}

export function appendBytes(path: string, bytes: Buffer): void {
  writeFileSync(path, Buffer.concat([readFileSync(path), bytes]));
}

/** Awaits a promise that must reject and returns its error. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}
