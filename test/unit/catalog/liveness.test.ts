/** Node liveness as logic: deadlines, the grace after a start, and reaping long-dead nodes. */
import { expect } from 'chai';
import { Liveness } from '../../../src/catalog/liveness.js';
import { StateStore } from '../../../src/catalog/state/state-store.js';
import { Writer } from '../../../src/catalog/state/writer.js';
import type { DurableStore } from '../../../src/catalog/store/types.js';
import type { Clock } from '../../../src/core/index.js';

/** Keeps nothing: these tests are about liveness, not durability. */
const memoryStore: DurableStore = {
  open: async () => ({ snapshot: null, entries: [], warnings: [] }),
  append: async () => {},
  snapshot: async () => {},
  close: async () => {},
};

function setup(reapAfterMs: number, onlyHeartbeatingNodes = false) {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, setTimeout: () => ({}), clearTimeout: () => {} };
  const state = new StateStore();
  const writer = new Writer(state, memoryStore);
  const live = new Liveness(state, writer, {
    clock,
    graceMs: 5_000,
    selfNode: 'srv',
    datacenter: 'dc1',
    reapAfterMs,
    onlyHeartbeatingNodes,
    log: { warn() {} },
  });
  live.start();
  live.stop(); // only the start time matters here; sweeps are driven by hand
  const serf = (node: string) => state.catalog.getCheck(node, 'serfHealth')?.Status;
  return { state, writer, live, serf, advance: (ms: number) => (now += ms) };
}

describe('catalog liveness', () => {
  it('marks a silent node critical after its TTL, and a heartbeat heals it', async () => {
    const t = setup(60_000);
    await t.live.heartbeat({ node: 'n1', address: '198.18.0.1', ttlMs: 3_000, nodeId: '' });
    expect(t.serf('n1')).to.equal('passing');
    t.advance(2_000);
    await t.live.sweep();
    expect(t.serf('n1')).to.equal('passing');
    t.advance(2_000);
    await t.live.sweep();
    expect(t.serf('n1')).to.equal('critical');
    await t.live.heartbeat({ node: 'n1', address: '198.18.0.1', ttlMs: 3_000, nodeId: '' });
    expect(t.serf('n1')).to.equal('passing');
  });

  it('removes a node that stays critical for the reap period, not before', async () => {
    const t = setup(60_000);
    await t.live.heartbeat({ node: 'gone', address: '198.18.0.2', ttlMs: 1_000, nodeId: '' });
    t.advance(2_000);
    await t.live.sweep();
    expect(t.serf('gone')).to.equal('critical');
    t.advance(59_000);
    await t.live.sweep();
    expect(t.state.catalog.nodes.has('gone')).to.equal(true);
    t.advance(2_000);
    await t.live.sweep();
    expect(t.state.catalog.nodes.has('gone')).to.equal(false);
  });

  it('with a shared store, judges only nodes that heartbeated to this server', async () => {
    for (const shared of [false, true]) {
      const t = setup(60_000, shared);
      // A node registered through another server (its heartbeats go there).
      await t.live.heartbeat({ node: 'mine', address: '198.18.0.3', ttlMs: 1_000, nodeId: '' });
      const other = { node: 'elsewhere', address: '198.18.0.4', ttlMs: 1_000, nodeId: '' };
      const peer = new Liveness(t.state, t.writer, {
        clock: { now: () => 0, setTimeout: () => ({}), clearTimeout: () => {} },
        graceMs: 5_000,
        selfNode: 'srv2',
        datacenter: 'dc1',
        log: { warn() {} },
      });
      await peer.heartbeat(other);
      t.advance(10_000);
      await t.live.sweep();
      expect(t.serf('mine')).to.equal('critical');
      expect(t.serf('elsewhere')).to.equal(shared ? 'passing' : 'critical');
    }
  });
});
