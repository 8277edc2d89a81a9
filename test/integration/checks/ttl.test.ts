import { expect } from 'chai';
import { systemClock } from '../../../src/core/index.js';
import { TTL_EXPIRED, TtlCheck } from '../../../src/agent/checks/index.js';
import type { CheckResult } from '../../../src/agent/checks/index.js';
import { waitFor } from './helpers.js';

describe('checks/ttl (real clock)', function () {
  this.timeout(20_000);

  it('expires a short TTL that is not refreshed', async () => {
    const seen: CheckResult[] = [];
    const ttl = new TtlCheck({
      ttlMs: 200,
      clock: systemClock,
      initial: { status: 'passing', output: '' },
      onResult: (r) => seen.push(r),
    });
    ttl.start();
    ttl.update('passing', 'fine');
    expect(ttl.result).to.deep.equal({ status: 'passing', output: 'fine' });
    await waitFor(() => seen.length === 2, 5000, 'the TTL to expire');
    expect(seen[1]).to.deep.equal({ status: 'critical', output: TTL_EXPIRED });
    ttl.stop();
  });
});
