import { expect } from 'chai';
import { MeshError } from '../../../src/core/index.js';
import { checkKind, planCheck } from '../../../src/agent/checks/index.js';

function userError(fn: () => unknown): MeshError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).kind).to.equal('user');
    return err as MeshError;
  }
  throw new Error('expected a MeshError');
}

describe('checks/definition', () => {
  it('finds the one kind a definition names', () => {
    expect(checkKind({ HTTP: 'http://x/' })).to.equal('http');
    expect(checkKind({ TCP: 'x:1' })).to.equal('tcp');
    expect(checkKind({ GRPC: 'x:1/svc' })).to.equal('grpc');
    expect(checkKind({ ScriptArgs: ['/bin/true'] })).to.equal('script');
    expect(checkKind({ TTL: '5s' })).to.equal('ttl');
  });

  it('rejects zero or several kinds', () => {
    expect(userError(() => checkKind({})).message).to.match(/exactly one.*none/);
    expect(userError(() => checkKind({ HTTP: 'http://x/', TCP: 'x:1' })).message).to.match(
      /got http, tcp/,
    );
    expect(userError(() => checkKind({ ScriptArgs: [] })).message).to.match(/none/);
  });

  it('defaults the timeout to 10s and caps it at the interval', () => {
    expect(planCheck({ TCP: 'x:1', Interval: '30s' }).timeoutMs).to.equal(10_000);
    expect(planCheck({ TCP: 'x:1', Interval: '30s', Timeout: '2s' }).timeoutMs).to.equal(2000);
    expect(planCheck({ TCP: 'x:1', Interval: '5s' }).timeoutMs).to.equal(5000);
    expect(planCheck({ TCP: 'x:1', Interval: '5s', Timeout: '20s' }).timeoutMs).to.equal(5000);
  });

  it('raises intervals to the floor', () => {
    expect(planCheck({ TCP: 'x:1', Interval: '100ms' }).intervalMs).to.equal(1000);
    expect(planCheck({ TCP: 'x:1', Interval: '100ms' }, 50).intervalMs).to.equal(100);
  });

  it('requires an interval for probes and a TTL for TTL checks', () => {
    expect(userError(() => planCheck({ HTTP: 'http://x/' })).field).to.equal('Interval');
    expect(userError(() => planCheck({ HTTP: 'http://x/', Interval: 'soon' })).field).to.equal(
      'Interval',
    );
    expect(userError(() => planCheck({ TTL: '0s' })).field).to.equal('TTL');
    const ttl = planCheck({ TTL: '1m30s' });
    expect(ttl).to.include({ kind: 'ttl', ttlMs: 90_000, intervalMs: 0 });
  });

  it('validates targets', () => {
    expect(userError(() => planCheck({ HTTP: 'ftp://x/', Interval: '1s' })).field).to.equal('HTTP');
    expect(userError(() => planCheck({ TCP: 'nohost', Interval: '1s' })).field).to.equal('TCP');
    expect(userError(() => planCheck({ TCP: 'x:99999', Interval: '1s' })).field).to.equal('TCP');
    expect(userError(() => planCheck({ GRPC: 'x/svc', Interval: '1s' })).field).to.equal('GRPC');
    expect(planCheck({ TCP: '[::1]:80', Interval: '1s' }).kind).to.equal('tcp');
  });

  it('reads thresholds, with warning defaulting to critical', () => {
    const t = planCheck({ TCP: 'x:1', Interval: '1s', FailuresBeforeCritical: 3 }).thresholds;
    expect(t).to.deep.equal({
      successBeforePassing: 0,
      failuresBeforeCritical: 3,
      failuresBeforeWarning: 3,
    });
    const bad = userError(() =>
      planCheck({ TCP: 'x:1', Interval: '1s', SuccessBeforePassing: -1 }),
    );
    expect(bad.field).to.equal('SuccessBeforePassing');
  });

  it('defaults OutputMaxSize to 4KiB', () => {
    expect(planCheck({ TCP: 'x:1', Interval: '1s' }).outputMaxSize).to.equal(4096);
    expect(planCheck({ TCP: 'x:1', Interval: '1s', OutputMaxSize: 10 }).outputMaxSize).to.equal(10);
  });
});
