import { expect } from 'chai';
import { FaultyFs } from './faulty-fs.js';
import { TempDirs, entries, entry, indexes, store } from './store-helpers.js';

describe('embedded store: group commit', () => {
  const dirs = new TempDirs();
  after(() => dirs.cleanup());

  it('commits 1,000 concurrent appends with a handful of fsyncs, in order', async () => {
    const dir = dirs.make();
    const fs = new FaultyFs();
    const s = store(dir, { fs });
    await s.open();
    const settled: number[] = [];
    // One append first so the rest arrive while its write+fsync is in flight.
    const first = s.append(entry(1)).then(() => settled.push(1));
    await Promise.resolve();
    const rest = entries(2, 1000).map((e) => s.append(e).then(() => settled.push(e.index)));
    await Promise.all([first, ...rest]);
    const stats = s.stats();
    await s.close();

    expect(settled).to.deep.equal(indexes(entries(1, 1000)));
    expect(stats.appends).to.equal(1000);
    console.log(`      group commit: ${stats.appends} appends, ${stats.syncs} fdatasync(s)`);
    expect(stats.syncs).to.be.at.most(10);
    expect(stats.syncs).to.equal(stats.batches);
    expect(fs.walWrites).to.equal(stats.batches); // one write call per batch
    expect(fs.datasyncs).to.equal(stats.syncs);
    expect((await store(dir).open()).entries).to.deep.equal(entries(1, 1000));
  });

  it('batches appends from 100 concurrent writers that each wait for their ack', async () => {
    const dir = dirs.make();
    const s = store(dir);
    await s.open();
    let next = 0;
    const writer = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) await s.append(entry(++next));
    };
    await Promise.all(Array.from({ length: 100 }, writer));
    const stats = s.stats();
    await s.close();

    expect(stats.appends).to.equal(1000);
    // Each writer has one append outstanding, so batches hold ~100 entries.
    console.log(`      group commit: ${stats.appends} appends, ${stats.syncs} fdatasync(s)`);
    expect(stats.syncs).to.be.at.most(20);
    expect((await store(dir).open()).entries).to.have.lengthOf(1000);
  });
});
