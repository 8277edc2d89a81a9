/** VipTable.rebase: a range change keeps what fits, moves the rest, never hands out one twice. */
import { expect } from 'chai';
import { VipTable } from '../../../src/catalog/state/vip-table.js';

describe('catalog/state/vip-table: range changes', () => {
  it('keeps addresses inside the new range and moves the others in name order', () => {
    const t = new VipTable('10.0.0.0/16');
    for (const s of ['a', 'b', 'c', 'd']) t.retain(s);
    // a..d hold 10.0.0.1..4; the new range keeps 10.0.0.2 and 10.0.0.3 only.
    const { table, change } = t.rebase('10.0.0.0/30');
    expect(change.kept).to.deep.equal(['a', 'b']);
    expect(change.moved).to.deep.equal([]);
    expect(change.dropped).to.deep.equal([
      { service: 'c', from: '10.0.0.3' },
      { service: 'd', from: '10.0.0.4' },
    ]);
    expect(Object.fromEntries(table.all())).to.deep.equal({ a: '10.0.0.1', b: '10.0.0.2' });
    const moved = t.rebase('10.1.0.0/16');
    expect(moved.change.moved.map((m) => `${m.service}:${m.from}->${m.to}`)).to.deep.equal([
      'a:10.0.0.1->10.1.0.1',
      'b:10.0.0.2->10.1.0.2',
      'c:10.0.0.3->10.1.0.3',
      'd:10.0.0.4->10.1.0.4',
    ]);
  });

  it('steps over kept addresses and never hands one out twice', () => {
    const t = new VipTable('10.0.0.0/24');
    for (let i = 0; i < 6; i++) t.retain(`s${i}`);
    t.release('s0');
    t.release('s1');
    // s2..s5 hold .3..6; in 10.0.0.0/24 they stay, and new services fill .1, .2, then .7 on.
    const { table } = t.rebase('10.0.0.0/24');
    for (const s of ['n1', 'n2', 'n3']) table.retain(s);
    expect(Object.fromEntries(table.all())).to.include({
      n1: '10.0.0.1',
      n2: '10.0.0.2',
      n3: '10.0.0.7',
    });
    // A kept address ahead of the allocator, freed: it comes back once, not twice.
    const old = new VipTable('10.0.0.0/16');
    for (const s of ['a', 'b', 'c']) old.retain(s);
    old.release('a');
    old.release('b');
    const r = old.rebase('10.0.0.0/24').table;
    r.release('c');
    for (const s of ['w', 'x', 'y', 'z']) r.retain(s);
    expect(Object.fromEntries(r.all())).to.deep.equal({
      w: '10.0.0.1',
      x: '10.0.0.2',
      y: '10.0.0.3',
      z: '10.0.0.4',
    });
  });
});
