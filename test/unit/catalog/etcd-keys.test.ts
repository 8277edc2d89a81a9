/** Pure pieces of the etcd store: key layout, range ends, and the messages for etcd failures. */
import { expect } from 'chai';
import { etcdCause, etcdWriteError } from '../../../src/catalog/etcd/etcd-errors.js';
import { etcdKeys, padIndex, prefixEnd } from '../../../src/catalog/etcd/keys.js';
import { toEntries } from '../../../src/catalog/etcd/etcd-snapshots.js';

describe('catalog/etcd keys and errors', () => {
  it('pads indexes so that byte order is numeric order', () => {
    expect(padIndex(42)).to.equal('00000000000000000042');
    expect(padIndex(9) < padIndex(10)).to.equal(true);
    expect(padIndex(Number.MAX_SAFE_INTEGER)).to.have.length(20);
  });

  it('lays keys out under the prefix', () => {
    const k = etcdKeys('/trellis');
    expect(k.logPrefix).to.equal('/trellis/log/');
    expect(k.snapshot).to.equal('/trellis/snapshot');
    expect(k.chunksOf(7, 'abc')).to.equal('/trellis/snapshot-data/00000000000000000007-abc/');
  });

  it('ends a prefix range just past every key that starts with it', () => {
    expect(prefixEnd('/t/log/').toString()).to.equal('/t/log0');
    expect([...prefixEnd('a\xff')]).to.deep.equal([0x61, 0xc3, 0xc0]);
  });

  it('orders log entries by revision and ignores a key put more than once', () => {
    const kv = (key: string, mod: number, version: number) => ({
      key: Buffer.from(key),
      value: Buffer.from('{}'),
      create_revision: String(mod),
      mod_revision: String(mod),
      version: String(version),
      lease: '0',
    });
    const entries = toEntries([kv('/t/log/b', 9, 1), kv('/t/log/a', 5, 1), kv('/t/log/c', 12, 2)]);
    expect(entries.map((e) => [e.key, e.index])).to.deep.equal([
      ['/t/log/a', 5],
      ['/t/log/b', 9],
    ]);
  });

  it('names etcd and the likely cause in failures', () => {
    expect(etcdCause(new Error('etcdserver: request timed out'))).to.match(/lost quorum/);
    expect(etcdCause(new Error('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:2379'))).to.match(
      /^no etcd endpoint could be reached/,
    );
    expect(etcdCause(new Error('etcdserver: permission denied'))).to.match(
      /refused the credentials/,
    );
    const err = etcdWriteError(new Error('etcdserver: no leader'));
    expect(err.status).to.equal(500);
    expect(err.message).to.match(/etcd/);
    expect(err.message).to.match(/quorum/);
  });
});
