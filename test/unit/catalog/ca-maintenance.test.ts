/**
 * When the leader's CA maintenance runs next (authority.ts nextMaintenanceIn, rotationDueAt,
 * pruneDueAt) and the token bucket behind leaf signing limits (rate-limit.ts takeToken), both
 * pure functions of the CA state and the time.
 */
import { expect } from 'chai';
import {
  CLOCK_SKEW_MS,
  MAX_CHECK_MS,
  nextMaintenanceIn,
  pruneDueAt,
  rotationDueAt,
} from '../../../src/catalog/connect/authority.js';
import { SigningLimiter, takeToken } from '../../../src/catalog/connect/rate-limit.js';
import { DEFAULT_CA_CONFIG, type CaRootRow } from '../../../src/catalog/state/ca-table.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3600_000;

function root(id: string, active: boolean, notBefore: number, rotatedOut?: number): CaRootRow {
  return {
    ID: id,
    Name: id,
    SerialNumber: 1,
    SigningKeyID: '',
    ExternalTrustDomain: '',
    NotBefore: new Date(notBefore).toISOString(),
    NotAfter: new Date(notBefore + 1000 * HOUR).toISOString(),
    RootCert: '',
    IntermediateCerts: null,
    Active: active,
    PrivateKeyType: 'ec',
    PrivateKeyBits: 256,
    ...(rotatedOut !== undefined ? { RotatedOutAt: new Date(rotatedOut).toISOString() } : {}),
    CreateIndex: 1,
    ModifyIndex: 1,
  };
}

describe('CA maintenance schedule', () => {
  const config = { ...DEFAULT_CA_CONFIG, LeafCertTTL: '10s', RotationPeriod: '2h' };

  it('checks every 30 s when nothing is due sooner', () => {
    const noRotation = { ...config, RotationPeriod: '0s' };
    expect(nextMaintenanceIn({ config: noRotation, roots: [root('a', true, T0)] }, T0)).to.equal(
      MAX_CHECK_MS,
    );
  });

  it('wakes just after the active root reaches its RotationPeriod', () => {
    const active = root('a', true, T0);
    expect(rotationDueAt(config, active)).to.equal(T0 + 2 * HOUR + 1);
    const now = T0 + 2 * HOUR - 5_000;
    expect(nextMaintenanceIn({ config, roots: [active] }, now)).to.equal(5_001);
  });

  it('wakes when a rotated-out root may be pruned (LeafCertTTL + clock skew)', () => {
    const old = root('old', false, T0 - HOUR, T0);
    expect(pruneDueAt(config, old)).to.equal(T0 + 10_000 + CLOCK_SKEW_MS + 1);
    expect(pruneDueAt(config, old, 0)).to.equal(T0 + 10_001);
    const roots = [old, root('new', true, T0)];
    expect(nextMaintenanceIn({ config, roots }, T0 + 2_000, 0)).to.equal(8_001);
    expect(nextMaintenanceIn({ config, roots }, T0 + 2_000)).to.equal(MAX_CHECK_MS);
  });

  it('never waits less than a second, even when work is overdue', () => {
    const overdue = root('a', true, T0 - 10 * HOUR);
    expect(nextMaintenanceIn({ config, roots: [overdue] }, T0)).to.equal(1_000);
  });
});

describe('signing token bucket', () => {
  it('starts full (burst = 2 x rate) and refills at the rate', () => {
    let b = takeToken(undefined, 1, T0);
    expect(b.allowed).to.equal(true);
    b = takeToken(b.bucket, 1, T0);
    expect(b.allowed).to.equal(true);
    expect(takeToken(b.bucket, 1, T0 + 500).allowed).to.equal(false);
    expect(takeToken(b.bucket, 1, T0 + 1_000).allowed).to.equal(true);
    // Empty: full again after burst / rate = 2 s.
    expect(b.fullInMs).to.equal(2_000);
  });

  it('counts no negative time when another server wrote the bucket from a clock ahead', () => {
    const ahead = { tokens: 0, at: T0 + 5_000 };
    const t = takeToken(ahead, 1, T0);
    expect(t.allowed).to.equal(false);
    expect(t.bucket.at).to.equal(T0 + 5_000);
  });

  it('the in-memory limiter keeps one bucket per node; rate 0 is unlimited', async () => {
    const l = new SigningLimiter();
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await l.take('n1', 1, T0));
    expect(got).to.deep.equal([true, true, false, false]);
    expect(await l.take('n2', 1, T0)).to.equal(true);
    expect(await l.take('n1', 0, T0)).to.equal(true);
  });
});
