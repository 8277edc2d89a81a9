import { expect } from 'chai';
import {
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  findIntactRecord,
  readRecordAt,
} from '../../../src/catalog/store/wal-format.js';
import { decodeSnapshot, encodeSnapshotHeader } from '../../../src/catalog/store/snapshot-file.js';
import { classifyDir, segmentName, snapshotName } from '../../../src/catalog/store/file-names.js';
import { planRetention } from '../../../src/catalog/store/retention.js';

describe('store formats', () => {
  it('frames a record as length, crc32, JSON payload and reads it back', () => {
    const rec = encodeRecord({ index: 7, command: { op: 'del', key: 'ü' } });
    const payload = Buffer.from(JSON.stringify({ index: 7, command: { op: 'del', key: 'ü' } }));
    expect(rec.readUInt32BE(0)).to.equal(payload.length);
    expect(rec.subarray(8).equals(payload)).to.equal(true);
    const read = readRecordAt(Buffer.concat([Buffer.alloc(3), rec]), 3);
    expect(read).to.deep.equal({
      kind: 'ok',
      entry: { index: 7, command: { op: 'del', key: 'ü' } },
      end: 3 + rec.length,
    });
  });

  it('classifies damaged records', () => {
    const rec = encodeRecord({ index: 1, command: 'x' });
    expect(readRecordAt(rec.subarray(0, 5), 0)).to.have.property('kind', 'damaged');
    expect(readRecordAt(rec.subarray(0, rec.length - 1), 0)).to.have.property('kind', 'damaged');
    expect(readRecordAt(Buffer.alloc(16), 0)).to.deep.equal({
      kind: 'damaged',
      reason: 'impossible record length 0',
    });
    const flipped = Buffer.from(rec);
    flipped[10] = flipped[10]! ^ 1;
    expect(readRecordAt(flipped, 0)).to.deep.equal({
      kind: 'damaged',
      reason: 'checksum mismatch',
    });
  });

  it('finds the next intact record after damage', () => {
    const a = encodeRecord({ index: 1, command: 'a' });
    const b = encodeRecord({ index: 2, command: 'b' });
    const buf = Buffer.concat([a, Buffer.from('junk!'), b]);
    expect(findIntactRecord(buf, 1)).to.equal(a.length + 5);
    expect(findIntactRecord(buf, a.length + 6)).to.equal(-1);
  });

  it('round-trips the segment header and notices damage', () => {
    const header = encodeSegmentHeader(123456789);
    expect(decodeSegmentHeader(header)).to.deep.equal({ prev: 123456789 });
    header[12] = header[12]! ^ 1;
    expect(decodeSegmentHeader(header)).to.deep.equal({
      problem: 'segment header checksum mismatch',
    });
    expect(decodeSegmentHeader(header.subarray(0, 10))).to.have.property('problem');
  });

  it('checksums the snapshot index as well as its data', () => {
    const snap = { index: 42, data: Buffer.from('state') };
    const file = Buffer.concat([encodeSnapshotHeader(snap), snap.data]);
    expect(decodeSnapshot(file, 42)).to.deep.equal(snap);
    expect(decodeSnapshot(file, 41)).to.match(/does not match the file name/);
    const badIndex = Buffer.from(file);
    badIndex[15] = 41;
    expect(decodeSnapshot(badIndex, 41)).to.equal('checksum mismatch');
    expect(decodeSnapshot(file.subarray(0, file.length - 1), 42)).to.match(/data bytes/);
  });

  it('names and sorts store files by index', () => {
    const listing = classifyDir([
      segmentName(100),
      segmentName(9),
      snapshotName(5),
      snapshotName(50),
      'snapshot-00000000000000000060.tmp',
      'snapshot-00000000000000000001.snap.corrupt',
      'notes.txt',
    ]);
    expect(listing.segments.map((s) => s.firstIndex)).to.deep.equal([9, 100]);
    expect(listing.snapshots.map((s) => s.index)).to.deep.equal([50, 5]);
    expect(listing.tmpFiles).to.deep.equal(['snapshot-00000000000000000060.tmp']);
  });

  it('keeps the newest snapshots and compacts up to the oldest kept one', () => {
    expect(planRetention([30, 10, 20], 2)).to.deep.equal({ keep: [30, 20], drop: [10], floor: 20 });
    expect(planRetention([30, 10], 1)).to.deep.equal({ keep: [30], drop: [10], floor: 30 });
    expect(planRetention([], 2)).to.deep.equal({ keep: [], drop: [], floor: 0 });
  });
});
