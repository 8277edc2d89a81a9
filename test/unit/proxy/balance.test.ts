/** Endpoint choice (pure): round robin in turn, least request between two random picks, random. */
import { expect } from 'chai';
import { endpointAt, pickFirst } from '../../../src/proxy/balance.js';
import type { Balancer, UpstreamPlan } from '../../../src/proxy/index.js';

const upstream = (balancer: Balancer, n: number): UpstreamPlan => ({
  destination: 'api',
  bindAddress: '127.0.0.1',
  bindPort: 9191,
  identity: 'spiffe://td/ns/default/dc/dc1/svc/api',
  endpoints: Array.from({ length: n }, (_, i) => ({
    address: `10.0.0.${i}`,
    port: 21000,
    node: `n${i}`,
  })),
  protocol: 'http',
  balancer,
});

describe('proxy/balance', () => {
  it('round robin takes the endpoints in turn, and the fallbacks follow the ring', () => {
    const u = upstream('round_robin', 3);
    const state = { next: 0 };
    const firsts = Array.from({ length: 6 }, () => pickFirst(u, state, () => 0));
    expect(firsts).to.deep.equal([0, 1, 2, 0, 1, 2]);
    expect([0, 1, 2].map((i) => endpointAt(u, 2, i).node)).to.deep.equal(['n2', 'n0', 'n1']);
  });

  it('least request never picks the busier of the two it compares, so an idle endpoint wins most', () => {
    const u = upstream('least_request', 4);
    const busy = new Map([
      ['n0', 50],
      ['n1', 50],
      ['n2', 50],
      ['n3', 0],
    ]);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[pickFirst(u, { next: 0 }, (ep) => busy.get(ep.node)!)]!++;
    // n3 wins every comparison it is in: half the picks (3 of the 6 pairs), the rest split evenly.
    expect(counts[3]).to.be.within(1700, 2300);
    for (const c of counts.slice(0, 3)) expect(c).to.be.within(450, 900);
  });

  it('random spreads picks over every endpoint', () => {
    const u = upstream('random', 5);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const f = pickFirst(u, { next: 0 }, () => 0);
      expect(f).to.be.within(0, 4);
      seen.add(f);
    }
    expect(seen.size).to.equal(5);
  });

  it('a single endpoint is always the pick', () => {
    for (const b of ['round_robin', 'least_request', 'random'] as const)
      expect(pickFirst(upstream(b, 1), { next: 7 }, () => 0)).to.equal(0);
  });
});
