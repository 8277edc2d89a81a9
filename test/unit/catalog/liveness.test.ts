/**
 * Node liveness as logic: deadlines, the grace after a start (or a leader change), reaping
 * long-dead nodes, and that only the leader judges, with what every server heard.
 */
import { expect } from 'chai';
import { Liveness, type HeardNode } from '../../../src/catalog/liveness.js';
import type { Leadership, ServerInfo } from '../../../src/catalog/leadership.js';
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

/** A leadership the test hands over and takes away (the etcd election is tested for real). */
class SwitchedLeadership implements Leadership {
  since: number | undefined;
  constructor(since: number | undefined) {
    this.since = since;
  }
  isLeader = (): boolean => this.since !== undefined;
  leader = (): ServerInfo | undefined => undefined;
  servers = (): ServerInfo[] => [];
  leaderSince = (): number | undefined => this.since;
  onChange(): void {}
  async close(): Promise<void> {}
}

function setup(reapAfterMs: number, elsewhere = new Map<string, HeardNode>()) {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, setTimeout: () => ({}), clearTimeout: () => {} };
  const state = new StateStore();
  const writer = new Writer(state, memoryStore);
  const leadership = new SwitchedLeadership(now);
  const live = new Liveness(state, writer, {
    clock,
    graceMs: 5_000,
    selfNode: 'srv',
    datacenter: 'dc1',
    reapAfterMs,
    leadership,
    elsewhere: { heard: (node) => elsewhere.get(node) },
    log: { warn() {} },
  });
  const serf = (node: string) => state.catalog.getCheck(node, 'serfHealth')?.Status;
  return {
    state,
    writer,
    live,
    serf,
    leadership,
    now: () => now,
    advance: (ms: number) => (now += ms),
  };
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

  it('only the leader judges, with heartbeats any server heard', async () => {
    const elsewhere = new Map<string, HeardNode>();
    const t = setup(60_000, elsewhere);
    await t.live.heartbeat({ node: 'mine', address: '198.18.0.3', ttlMs: 1_000, nodeId: '' });
    await t.live.heartbeat({ node: 'elsewhere', address: '198.18.0.4', ttlMs: 1_000, nodeId: '' });
    t.leadership.since = undefined; // another server leads
    t.advance(10_000);
    // Another server heard 'elsewhere' just now.
    elsewhere.set('elsewhere', { deadline: t.now() + 3_000, heardAt: t.now() });
    await t.live.sweep();
    expect(t.serf('mine')).to.equal('passing'); // not the leader: no judgement
    t.advance(500);
    t.leadership.since = t.now(); // this server takes over
    await t.live.sweep();
    // Heard before the take-over: each node gets the grace from then.
    expect(t.serf('mine')).to.equal('passing');
    t.advance(4_000);
    await t.live.sweep();
    expect(t.serf('elsewhere')).to.equal('passing'); // within the grace
    t.advance(1_500);
    elsewhere.set('elsewhere', { deadline: t.now() + 3_000, heardAt: t.now() });
    await t.live.sweep();
    expect(t.serf('mine')).to.equal('critical'); // no server heard it within its TTL
    expect(t.serf('elsewhere')).to.equal('passing'); // heard after the take-over, still alive
    t.advance(3_500);
    await t.live.sweep();
    expect(t.serf('elsewhere')).to.equal('critical');
  });
});
