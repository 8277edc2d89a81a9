import { expect } from 'chai';
import { TTL_EXPIRED, TtlCheck } from '../../../src/agent/checks/index.js';
import type { CheckResult } from '../../../src/agent/checks/index.js';
import { FakeClock } from './fake-clock.js';

describe('checks/ttl (fake clock)', () => {
  it('starts critical and expires when not updated', async () => {
    const clock = new FakeClock();
    const seen: CheckResult[] = [];
    const ttl = new TtlCheck({ ttlMs: 1000, clock, onResult: (r) => seen.push(r) });
    ttl.start();
    expect(ttl.result).to.deep.equal({ status: 'critical', output: '' });
    await clock.advance(999);
    expect(seen).to.deep.equal([]);
    await clock.advance(1);
    expect(seen).to.deep.equal([{ status: 'critical', output: TTL_EXPIRED }]);
  });

  it('each update restarts the TTL', async () => {
    const clock = new FakeClock();
    const seen: CheckResult[] = [];
    const ttl = new TtlCheck({
      ttlMs: 1000,
      clock,
      initial: { status: 'passing', output: '' },
      onResult: (r) => seen.push(r),
    });
    ttl.start();
    await clock.advance(800);
    ttl.update('warning', 'slow');
    await clock.advance(800);
    expect(ttl.result).to.deep.equal({ status: 'warning', output: 'slow' });
    await clock.advance(200);
    expect(ttl.result).to.deep.equal({ status: 'critical', output: TTL_EXPIRED });
    expect(seen.map((r) => r.status)).to.deep.equal(['warning', 'critical']);
  });

  it('truncates notes to OutputMaxSize and stops cleanly', async () => {
    const clock = new FakeClock();
    const ttl = new TtlCheck({ ttlMs: 1000, clock, outputMaxSize: 3, onResult: () => undefined });
    ttl.start();
    ttl.update('passing', 'abcdef');
    expect(ttl.result.output).to.equal('abc');
    ttl.stop();
    expect(clock.pending).to.equal(0);
    await clock.advance(5000);
    expect(ttl.result.status).to.equal('passing');
  });
});
