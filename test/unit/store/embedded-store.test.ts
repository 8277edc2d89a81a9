import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { scanSegment } from '../../../src/catalog/store/wal-scan.js';
import {
  TempDirs,
  entries,
  entry,
  flipByte,
  indexes,
  recordingLogger,
  rejection,
  segmentFiles,
  snapshotFiles,
  store,
  writeEntries,
} from './store-helpers.js';

/** Last index in each segment file on disk. */
function segmentLastIndexes(dir: string): number[] {
  return segmentFiles(dir).map((p) => scanSegment(readFileSync(p), p, false).lastIndex);
}

describe('embedded store: log, snapshots and compaction', () => {
  const dirs = new TempDirs();
  after(() => dirs.cleanup());

  it('opens an empty directory (creating it) and round-trips entries', async () => {
    const dir = join(dirs.make(), 'nested', 'store');
    const s = store(dir);
    const first = await s.open();
    expect(first).to.deep.equal({ snapshot: null, entries: [], warnings: [] });
    const list = [...entries(1, 20), { index: 21, command: null }, { index: 22, command: 'x' }];
    await Promise.all(list.map((e) => s.append(e)));
    await s.close();

    const again = await store(dir).open();
    expect(again.entries).to.deep.equal(list);
    expect(again.snapshot).to.equal(null);
    expect(again.warnings).to.deep.equal([]);
  });

  it('continues after reopening: later appends land after the recovered ones', async () => {
    const dir = dirs.make();
    await writeEntries(dir, entries(1, 10));
    const s = store(dir);
    expect(indexes((await s.open()).entries)).to.deep.equal(entries(1, 10).map((e) => e.index));
    await rejection(s.append(entry(10)));
    await s.append(entry(12)); // gaps are allowed
    await s.close();
    const again = await store(dir).open();
    expect(indexes(again.entries)).to.deep.equal([...indexes(entries(1, 10)), 12]);
  });

  it('rolls to a new segment once the current one reaches segmentBytes', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 400 });
    await s.open();
    for (const e of entries(1, 40)) await s.append(e);
    await s.close();
    const files = segmentFiles(dir);
    expect(files.length).to.be.greaterThan(5);
    const again = await store(dir).open();
    expect(again.entries).to.deep.equal(entries(1, 40));
  });

  it('rejects indexes that do not strictly increase, and bad entries, without harm', async () => {
    const dir = dirs.make();
    const s = store(dir);
    await s.open();
    await s.append(entry(5));
    for (const bad of [entry(5), entry(3), { index: 6.5, command: 1 }, { index: -1, command: 1 }]) {
      const err = await rejection(s.append(bad));
      expect(err).to.be.instanceOf(MeshError);
      expect((err as MeshError).code).to.equal('MESH_ERR_STORAGE');
    }
    const err = await rejection(s.append({ index: 7, command: { n: 1n } }));
    expect(err.message).to.match(/entry 7 cannot be stored as JSON/);
    await s.append(entry(8));
    await s.close();
    expect(indexes((await store(dir).open()).entries)).to.deep.equal([5, 8]);
  });

  it('refuses use before open, a second open, and appends after close', async () => {
    const dir = dirs.make();
    const s = store(dir);
    expect((await rejection(s.append(entry(1)))).message).to.match(/not open/);
    await s.open();
    expect((await rejection(s.open())).message).to.match(/once/);
    await s.close();
    await s.close();
    expect((await rejection(s.append(entry(1)))).message).to.match(/not open/);
  });

  it('close() waits for appends still in the queue', async () => {
    const dir = dirs.make();
    const s = store(dir);
    await s.open();
    const pending = entries(1, 100).map((e) => s.append(e));
    await s.close();
    await Promise.all(pending);
    expect((await store(dir).open()).entries).to.have.lengthOf(100);
  });

  it('recovers snapshot + later entries and deletes segments the snapshot covers', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 300, keepSnapshots: 1 });
    await s.open();
    for (const e of entries(1, 30)) await s.append(e);
    const before = segmentFiles(dir).length;
    await s.snapshot({ index: 30, data: Buffer.from('state@30') });
    expect(segmentFiles(dir)).to.have.lengthOf(0);
    for (const e of entries(31, 50)) await s.append(e);
    await s.snapshot({ index: 45, data: Buffer.from('state@45') });
    await s.close();

    expect(before).to.be.greaterThan(3);
    expect(snapshotFiles(dir)).to.have.lengthOf(1);
    expect(segmentLastIndexes(dir).every((last) => last > 45)).to.equal(true);
    const again = await store(dir).open();
    expect(again.snapshot?.index).to.equal(45);
    expect(again.snapshot?.data.toString()).to.equal('state@45');
    expect(again.entries).to.deep.equal(entries(46, 50));
  });

  it('keeps two snapshots and the log back to the older one by default', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 300 });
    await s.open();
    for (const e of entries(1, 20)) await s.append(e);
    await s.snapshot({ index: 20, data: Buffer.from('s20') });
    for (const e of entries(21, 40)) await s.append(e);
    await s.snapshot({ index: 40, data: Buffer.from('s40') });
    expect(Math.min(...segmentLastIndexes(dir))).to.be.greaterThan(20);
    for (const e of entries(41, 60)) await s.append(e);
    await s.snapshot({ index: 60, data: Buffer.from('s60') });
    await s.close();

    expect(snapshotFiles(dir)).to.have.lengthOf(2);
    expect(Math.min(...segmentLastIndexes(dir))).to.be.greaterThan(40);
    const again = await store(dir).open();
    expect(again.snapshot?.data.toString()).to.equal('s60');
    expect(again.entries).to.deep.equal([]);
  });

  it('refuses appends a snapshot already covers and snapshots older than the newest', async () => {
    const dir = dirs.make();
    const s = store(dir);
    await s.open();
    await s.append(entry(1));
    await s.snapshot({ index: 10, data: Buffer.alloc(0) });
    expect((await rejection(s.append(entry(5)))).message).to.match(/greater than 10/);
    expect((await rejection(s.snapshot({ index: 9, data: Buffer.alloc(0) }))).message).to.match(
      /programming error/,
    );
    await s.append(entry(11));
    await s.close();
    const again = await store(dir).open();
    expect(again.snapshot?.index).to.equal(10);
    expect(indexes(again.entries)).to.deep.equal([11]);
  });

  it('falls back to the older snapshot when the newest is corrupt, losing nothing', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 300 });
    await s.open();
    for (const e of entries(1, 20)) await s.append(e);
    await s.snapshot({ index: 10, data: Buffer.from('s10') });
    await s.snapshot({ index: 20, data: Buffer.from('s20') });
    for (const e of entries(21, 25)) await s.append(e);
    await s.close();
    const newest = join(dir, snapshotFiles(dir)[1]!);
    flipByte(newest, 30);

    const logger = recordingLogger();
    const again = await store(dir, { logger }).open();
    expect(again.snapshot?.data.toString()).to.equal('s10');
    expect(again.entries).to.deep.equal(entries(11, 25));
    expect(again.warnings).to.have.lengthOf(1);
    expect(again.warnings[0]).to.include(newest).and.include('checksum mismatch');
    expect(logger.warnings).to.deep.equal(again.warnings);
    expect(existsSync(`${newest}.corrupt`)).to.equal(true);
  });

  it('refuses to start when the only snapshot is corrupt and the log was compacted', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 300, keepSnapshots: 1 });
    await s.open();
    for (const e of entries(1, 20)) await s.append(e);
    await s.snapshot({ index: 20, data: Buffer.from('s20') });
    await s.append(entry(21));
    await s.close();
    const snap = join(dir, snapshotFiles(dir)[0]!);
    writeFileSync(snap, readFileSync(snap).subarray(0, 30));

    const err = await rejection(store(dir).open());
    expect(err).to.be.instanceOf(MeshError);
    expect(err.message).to.include(snap).and.include('refusing to start');
    expect(existsSync(snap)).to.equal(true); // a refused open changes nothing
  });

  it('deletes a leftover unfinished snapshot on open', async () => {
    const dir = dirs.make();
    await writeEntries(dir, entries(1, 3));
    const tmp = join(dir, 'snapshot-00000000000000000003.tmp');
    writeFileSync(tmp, 'half a snapshot');
    const again = await store(dir).open();
    expect(again.entries).to.deep.equal(entries(1, 3));
    expect(again.warnings.join()).to.include('unfinished snapshot');
    expect(existsSync(tmp)).to.equal(false);
  });

  it('refuses to start when a segment in the middle of the log is missing', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 200 });
    await s.open();
    for (const e of entries(1, 30)) await s.append(e);
    await s.close();
    const files = segmentFiles(dir);
    unlinkSync(files[2]!);
    const err = await rejection(store(dir).open());
    expect(err.message).to.match(/write-ahead log is incomplete/);
    expect(err.message).to.include(files[3]!);
    expect(readdirSync(dir)).to.have.lengthOf(files.length - 1);
  });
});
