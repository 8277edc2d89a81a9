import { expect } from 'chai';
import type { HealthStatus } from '../../../src/api/index.js';
import {
  aliasResult,
  CheckScheduler,
  type AliasTarget,
  type CheckResult,
} from '../../../src/agent/checks/index.js';
import { FakeClock, scriptedRandom } from './fake-clock.js';

const check = (Name: string, Status: HealthStatus, Output = ''): AliasTarget['checks'][number] => ({
  Name,
  Status,
  Output,
});

describe('checks: alias', () => {
  it('takes the worst status of the aliased checks, with Consul outputs', () => {
    const at = (checks: AliasTarget['checks'], exists = true): CheckResult =>
      aliasResult('web', { node: 'n1', exists, checks });
    expect(at([])).to.deep.equal({ status: 'passing', output: 'No checks found.' });
    expect(at([check('a', 'passing')])).to.deep.equal({
      status: 'passing',
      output: 'All checks passing.',
    });
    expect(at([check('a', 'warning', 'slow'), check('b', 'passing')])).to.deep.equal({
      status: 'warning',
      output: 'Aliased check "a" failing: slow',
    });
    expect(
      at([check('a', 'warning', 'slow'), check('b', 'critical', 'down'), check('c', 'warning')]),
    ).to.deep.equal({ status: 'critical', output: 'Aliased check "b" failing: down' });
    expect(at([], false)).to.deep.equal({
      status: 'critical',
      output: 'Service web could not be found on node n1',
    });
  });

  it('is recomputed by refreshAliases and reported only when it changes', () => {
    let target: AliasTarget = { node: 'n1', exists: true, checks: [check('a', 'passing')] };
    const seen: [string, CheckResult][] = [];
    const s = new CheckScheduler({
      clock: new FakeClock(),
      random: scriptedRandom(0.5),
      onChange: (id, r) => seen.push([id, r]),
      aliasSource: (id) => {
        expect(id).to.equal('web');
        return target;
      },
    });
    const state = s.add('alias', { AliasService: 'web' });
    // Nothing is computed until the owner says its state is in place.
    expect(state).to.include({ kind: 'alias', status: 'critical' });
    s.refreshAliases();
    s.refreshAliases();
    target = { ...target, checks: [check('a', 'critical', 'x')] };
    s.refreshAliases();
    expect(seen).to.deep.equal([
      ['alias', { status: 'passing', output: 'All checks passing.' }],
      ['alias', { status: 'critical', output: 'Aliased check "a" failing: x' }],
    ]);
    expect(() => s.ttlUpdate('alias', 'passing')).to.throw(/not a TTL check/);
  });

  it('folds a refresh asked for while refreshing into another pass', () => {
    // b aliases a service whose health is a's status: a's change must reach b in one call.
    const status = new Map<string, HealthStatus>();
    let appHealthy = false;
    const s: CheckScheduler = new CheckScheduler({
      clock: new FakeClock(),
      random: scriptedRandom(0.5),
      onChange: (id, r) => {
        status.set(id, r.status);
        s.refreshAliases();
      },
      aliasSource: (id) => ({
        node: 'n1',
        exists: true,
        checks:
          id === 'app'
            ? [check('app', appHealthy ? 'passing' : 'critical')]
            : [check('a', status.get('a') ?? 'critical')],
      }),
    });
    s.add('b', { AliasService: 'proxy' });
    s.add('a', { AliasService: 'app' });
    appHealthy = true;
    s.refreshAliases();
    expect(status.get('a')).to.equal('passing');
    expect(status.get('b')).to.equal('passing');
  });
});
