/** prepareRestore as pure logic: indexes of a restored state, and refusals of bad states. */
import { expect } from 'chai';
import type { Command } from '../../../src/catalog/state/commands.js';
import { prepareRestore } from '../../../src/catalog/state/restore.js';
import { StateStore } from '../../../src/catalog/state/state-store.js';

const kvSet = (key: string, value: string): Command => ({
  type: 'kv-set',
  key,
  value: Buffer.from(value).toString('base64'),
  flags: 0,
  at: 0,
});

function stateWith(cmds: Command[], from = 1): StateStore {
  const s = new StateStore();
  cmds.forEach((c, i) => s.apply(c, from + i));
  return s;
}

describe('prepareRestore', () => {
  it('keeps row indexes below the restore index; every watch key gets the restore index', () => {
    const saved = stateWith([kvSet('a', '1'), kvSet('b', '2')]); // indexes 1, 2
    const current = stateWith([kvSet('a', '1'), kvSet('b', '2'), kvSet('c', '3')]);
    const next = prepareRestore(current, saved.serialize(), (snap) => Math.max(3, snap) + 1);
    expect(next.lastIndex).to.equal(4);
    expect(next.kv.get('a')!.ModifyIndex).to.equal(1);
    expect(next.indexes.get('nodes')).to.equal(4);
    expect(next.indexes.get('kv')).to.equal(4);
  });

  it('a KV key changed or added since the snapshot gets the restore index, never a lower one', () => {
    const saved = stateWith([kvSet('a', '1'), kvSet('b', '2')]);
    const current = stateWith([kvSet('a', '1'), kvSet('b', '2'), kvSet('b', 'x'), kvSet('c', '3')]);
    const next = prepareRestore(current, saved.serialize(), () => 10);
    expect(next.kv.maxIndex('a', true)).to.equal(1); // unchanged since the save
    expect(next.kv.get('b')!.ModifyIndex).to.equal(10); // changed since: its saved value, index 10
    expect(Buffer.from(next.kv.get('b')!.Value!, 'base64').toString()).to.equal('2');
    expect(next.kv.get('c')).to.equal(undefined);
    expect(next.kv.maxIndex('c', true)).to.equal(10); // a tombstone at the restore
  });

  it('lowers indexes above the restore index (a long history into a short one)', () => {
    const saved = stateWith([kvSet('a', '1')], 5000);
    const next = prepareRestore(new StateStore(), saved.serialize(), () => 42);
    expect(next.lastIndex).to.equal(42);
    expect(next.kv.get('a')).to.include({ CreateIndex: 42, ModifyIndex: 42 });
  });

  it('replaceWith swaps the tables in and wakes every waiter', () => {
    const current = stateWith([kvSet('a', '1')]);
    let woke = 0;
    current.hub.subscribe({ keys: ['svc:web'] }, () => woke++);
    current.hub.subscribe({ keys: [], kvPrefixes: ['zzz/'] }, () => woke++);
    const next = prepareRestore(current, stateWith([kvSet('b', '2')]).serialize(), () => 7);
    current.replaceWith(next);
    expect(woke).to.equal(2);
    expect(current.lastIndex).to.equal(7);
    expect(current.kv.get('b')).to.not.equal(undefined);
    expect(current.kv.get('a')).to.equal(undefined);
  });

  it('refuses data that is not a state, naming the field, and changes nothing', () => {
    const current = stateWith([kvSet('a', '1')]);
    const bad: [string, string][] = [
      ['not json', 'state'],
      ['[1]', 'state'],
      ['{"v":2}', 'state.v'],
      ['{"v":1,"lastIndex":-1}', 'state.lastIndex'],
      ['{"v":1,"lastIndex":3,"nodes":[]}', 'state.services'],
    ];
    for (const [text, field] of bad) {
      expect(() => prepareRestore(current, Buffer.from(text), () => 9))
        .to.throw()
        .with.property('field', field);
    }
    expect(current.lastIndex).to.equal(1);
    expect(current.kv.get('a')).to.not.equal(undefined);
  });
});
