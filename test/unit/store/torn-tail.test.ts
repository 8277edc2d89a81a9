import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { SEGMENT_HEADER_BYTES } from '../../../src/catalog/store/wal-format.js';
import {
  TempDirs,
  appendBytes,
  entries,
  fileSize,
  flipByte,
  indexes,
  recordingLogger,
  rejection,
  segmentFiles,
  store,
  truncateBy,
  writeEntries,
} from './store-helpers.js';

/** Offset of the first record's payload in a segment. */
const FIRST_PAYLOAD = SEGMENT_HEADER_BYTES + 8;

/**
 * Writes entries 1..n (one batch each so each record is its own write), damages the last
 * segment, and checks that recovery drops exactly the damage, warns, truncates, and that
 * appends continue after it.
 */
async function expectTornTail(
  dirs: TempDirs,
  damage: (path: string) => void,
  survivors: number,
  reason: RegExp,
): Promise<void> {
  const dir = dirs.make();
  const s = store(dir);
  await s.open();
  for (const e of entries(1, 10)) await s.append(e);
  await s.close();
  const [path] = segmentFiles(dir);
  damage(path!);

  const logger = recordingLogger();
  const reopened = store(dir, { logger });
  const rec = await reopened.open();
  expect(indexes(rec.entries)).to.deep.equal(indexes(entries(1, survivors)));
  expect(rec.warnings).to.have.lengthOf(1);
  expect(rec.warnings[0])
    .to.include(path)
    .and.match(/torn tail/)
    .and.match(reason);
  expect(logger.warnings).to.deep.equal(rec.warnings);
  const validLength = Number(/at offset (\d+)/.exec(rec.warnings[0]!)?.[1]);
  expect(fileSize(path!)).to.equal(validLength);

  await reopened.append({ index: 11, command: 'after' });
  await reopened.close();
  const again = await store(dir).open();
  expect(again.warnings).to.deep.equal([]);
  expect(indexes(again.entries)).to.deep.equal([...indexes(entries(1, survivors)), 11]);
}

describe('embedded store: torn tails and corruption', () => {
  const dirs = new TempDirs();
  after(() => dirs.cleanup());

  it('drops a last record cut short by a few bytes', async () => {
    await expectTornTail(dirs, (p) => truncateBy(p, 5), 9, /incomplete record/);
  });

  it('drops a record header cut short', async () => {
    await expectTornTail(
      dirs,
      (p) => {
        const size = fileSize(p);
        // Keep entries 1..9 plus 5 bytes of the 10th record's header.
        const lastLen = readFileSync(p).length - lastRecordOffset(p);
        truncateBy(p, lastLen - 5);
        expect(fileSize(p)).to.be.lessThan(size);
      },
      9,
      /incomplete record header/,
    );
  });

  it('drops a zero-filled tail', async () => {
    await expectTornTail(dirs, (p) => appendBytes(p, Buffer.alloc(4096)), 10, /zero-filled/);
  });

  it('drops a last record whose checksum does not match', async () => {
    await expectTornTail(dirs, (p) => flipByte(p, fileSize(p) - 3), 9, /checksum mismatch/);
  });

  it('drops a last record whose length field was damaged', async () => {
    await expectTornTail(dirs, (p) => flipByte(p, lastRecordOffset(p) + 2), 9, /record/);
  });

  it('drops trailing garbage that holds no intact record', async () => {
    await expectTornTail(
      dirs,
      (p) => appendBytes(p, Buffer.from('\x00\x00\x00\x30garbage')),
      10,
      /incomplete record/,
    );
  });

  it('removes a last segment whose header never made it to disk', async () => {
    const dir = dirs.make();
    await writeEntries(dir, entries(1, 5));
    const stub = join(dir, 'wal-00000000000000000006.log');
    writeFileSync(stub, Buffer.from('TRWA'));
    const rec = await store(dir).open();
    expect(indexes(rec.entries)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(rec.warnings[0]).to.include(stub).and.include('unfinished');
    expect(existsSync(stub)).to.equal(false);
  });

  it('refuses to start on a damaged record in the middle, naming file and offset', async () => {
    const dir = dirs.make();
    const s = store(dir);
    await s.open();
    for (const e of entries(1, 10)) await s.append(e);
    await s.close();
    const [path] = segmentFiles(dir);
    const size = fileSize(path!);
    flipByte(path!, FIRST_PAYLOAD + 3);

    const err = await rejection(store(dir).open());
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).code).to.equal('MESH_ERR_STORAGE');
    expect(err.message).to.include(
      `corrupt write-ahead log ${path} at offset ${SEGMENT_HEADER_BYTES}: checksum mismatch (record 1)`,
    );
    expect(err.message).to.match(/refusing to start/);
    expect(fileSize(path!)).to.equal(size); // nothing truncated
  });

  it('refuses to start on an impossible length followed by intact records', async () => {
    const dir = dirs.make();
    await writeEntries(dir, entries(1, 10));
    const [path] = segmentFiles(dir);
    flipByte(path!, SEGMENT_HEADER_BYTES); // high byte of the first length
    const err = await rejection(store(dir).open());
    expect(err.message).to.match(/at offset 20: impossible record length \d+ \(record 1\)/);
    expect(err.message).to.match(/intact records after it/);
  });

  it('refuses to start on damage at the end of a segment that is not the last', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 200 });
    await s.open();
    for (const e of entries(1, 20)) await s.append(e);
    await s.close();
    const [first] = segmentFiles(dir);
    truncateBy(first!, 4);
    const err = await rejection(store(dir).open());
    expect(err.message).to.include(`corrupt write-ahead log ${first}`);
    expect(err.message).to.match(/incomplete record/);
  });

  it('refuses to start on a damaged segment header that is not the last', async () => {
    const dir = dirs.make();
    const s = store(dir, { segmentBytes: 200 });
    await s.open();
    for (const e of entries(1, 20)) await s.append(e);
    await s.close();
    const [first] = segmentFiles(dir);
    flipByte(first!, 9);
    const err = await rejection(store(dir).open());
    expect(err.message).to.include(`corrupt write-ahead log ${first} at offset 0`);
  });
});

/** Offset of the last record in a segment (walks the length fields). */
function lastRecordOffset(path: string): number {
  const buf = readFileSync(path);
  let off = SEGMENT_HEADER_BYTES;
  let last = off;
  while (off + 8 <= buf.length) {
    const next = off + 8 + buf.readUInt32BE(off);
    if (next > buf.length) break;
    last = off;
    off = next;
  }
  return last;
}
