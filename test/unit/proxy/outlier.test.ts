/** Passive ejection (pure): how long, doubling, forgetting, and never an empty pool. */
import { expect } from 'chai';
import type { Clock } from '../../../src/core/index.js';
import { EJECT_BASE_MS, EJECT_MAX_MS, Outliers } from '../../../src/proxy/outlier.js';
import type { UpstreamPlan } from '../../../src/proxy/index.js';

const clock = { t: 1_000_000, now: () => clock.t } as unknown as Clock & { t: number };
const u: UpstreamPlan = {
  destination: 'api',
  bindAddress: '127.0.0.1',
  bindPort: 1,
  identity: 'spiffe://td/ns/default/dc/dc1/svc/api',
  endpoints: [0, 1, 2].map((i) => ({ address: `10.0.0.${i}`, port: 21000, node: `n${i}` })),
  protocol: 'http',
  balancer: 'round_robin',
};
const [a, b, c] = u.endpoints as [
  UpstreamPlan['endpoints'][0],
  UpstreamPlan['endpoints'][0],
  UpstreamPlan['endpoints'][0],
];

describe('proxy/outlier', () => {
  it('ejects for the base time, doubling on each ejection in a row up to the maximum', () => {
    const o = new Outliers(clock);
    const times: (number | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      times.push(o.eject(a));
      expect(o.eject(a)).to.equal(undefined); // already out: not counted twice
      clock.t += EJECT_MAX_MS;
    }
    expect(times).to.deep.equal([
      EJECT_BASE_MS,
      2 * EJECT_BASE_MS,
      4 * EJECT_BASE_MS,
      EJECT_MAX_MS,
      EJECT_MAX_MS,
    ]);
    o.succeeded(a);
    expect(o.eject(a)).to.equal(EJECT_BASE_MS);
  });

  it('skips ejected endpoints, unless every endpoint is ejected', () => {
    const o = new Outliers(clock);
    expect(o.skipper(u)).to.equal(undefined);
    o.eject(a);
    const skip = o.skipper(u)!;
    expect([a, b, c].map(skip)).to.deep.equal([true, false, false]);
    o.eject(b);
    o.eject(c);
    expect(o.skipper(u)).to.equal(undefined);
    clock.t += EJECT_BASE_MS;
    expect(o.skipper(u)).to.equal(undefined);
  });

  it('forgets endpoints that left the plans', () => {
    const o = new Outliers(clock);
    o.eject(a);
    o.retain(new Set());
    expect(o.skipper(u)).to.equal(undefined);
  });
});
