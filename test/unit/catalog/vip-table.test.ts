/** Virtual IPs of mesh services (pure): stable, lowest freed first, survive a snapshot. */
import { expect } from 'chai';
import { VipTable, parseVipRange } from '../../../src/catalog/state/vip-table.js';

describe('catalog/state/vip-table', () => {
  it('hands out addresses from 240.0.0.1 in order, one per service however many instances', () => {
    const t = new VipTable();
    t.retain('api');
    t.retain('web');
    t.retain('api');
    expect([t.get('api'), t.get('web'), t.get('db')]).to.deep.equal([
      '240.0.0.1',
      '240.0.0.2',
      undefined,
    ]);
  });

  it('keeps the address until the last instance leaves, then reuses the lowest freed one', () => {
    const t = new VipTable();
    for (const s of ['a', 'b', 'c', 'a']) t.retain(s);
    t.release('a');
    expect(t.get('a')).to.equal('240.0.0.1');
    t.release('a');
    t.release('b');
    expect([t.get('a'), t.get('b')]).to.deep.equal([undefined, undefined]);
    t.retain('d');
    t.retain('e');
    t.retain('f');
    expect([t.get('d'), t.get('e'), t.get('f')]).to.deep.equal([
      '240.0.0.1',
      '240.0.0.2',
      '240.0.0.4',
    ]);
  });

  it('restores the same addresses from a snapshot, whatever order instances are replayed in', () => {
    const t = new VipTable();
    for (const s of ['x', 'y', 'z']) t.retain(s);
    t.release('x');
    const r = VipTable.from(JSON.parse(JSON.stringify(t.toJSON())));
    for (const s of ['z', 'y']) r.retain(s);
    expect([...r.all()]).to.deep.equal([
      ['y', '240.0.0.2'],
      ['z', '240.0.0.3'],
    ]);
    r.retain('w');
    expect(r.get('w')).to.equal('240.0.0.1');
  });

  it('takes a configurable range, refuses malformed ones, and says when it is exhausted', () => {
    const t = new VipTable('198.18.200.0/30');
    expect(t.retain('a')).to.equal(true);
    expect(t.retain('b')).to.equal(true);
    expect(t.retain('c')).to.equal(false);
    expect([t.get('a'), t.get('b'), t.get('c')]).to.deep.equal([
      '198.18.200.1',
      '198.18.200.2',
      undefined,
    ]);
    expect(parseVipRange('240.0.0.0/4')).to.deep.equal({ base: 0xf0000000, size: 2 ** 28 });
    for (const bad of [
      '240.0.0.0',
      '240.0.0.1/4',
      '300.0.0.0/8',
      '10.0.0.0/31',
      '0.0.0.0/2',
      'x/8',
    ])
      expect(() => parseVipRange(bad), bad).to.throw(/virtual IP range/);
  });
});
