import { expect } from 'chai';
import { MeshError, deferred } from '../../../src/core/index.js';
import type { Deferred } from '../../../src/core/index.js';
import { CheckScheduler, TTL_EXPIRED } from '../../../src/agent/checks/index.js';
import type {
  CheckResult,
  CheckRunner,
  CheckSchedulerOptions,
  ProbeKind,
} from '../../../src/agent/checks/index.js';
import { FakeClock, flush, scriptedRandom } from './fake-clock.js';

const pass: CheckResult = { status: 'passing', output: 'ok' };
const fail: CheckResult = { status: 'critical', output: 'down' };

/** A runner whose runs the test completes by hand. */
class ManualRunner implements CheckRunner {
  readonly kind: ProbeKind = 'tcp';
  readonly runs: { timeoutMs: number; signal?: AbortSignal; done: Deferred<CheckResult> }[] = [];
  active = 0;
  maxActive = 0;

  run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
    const done = deferred<CheckResult>();
    this.runs.push({ timeoutMs, signal, done });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return done.promise.finally(() => this.active--);
  }

  async finish(result: CheckResult | Error): Promise<void> {
    const run = this.runs[this.runs.length - 1]!;
    if (result instanceof Error) run.done.reject(result);
    else run.done.resolve(result);
    await flush();
  }
}

/** A runner that answers from a list, repeating the last answer. */
class ListRunner implements CheckRunner {
  readonly kind: ProbeKind = 'tcp';
  calls = 0;
  constructor(private readonly results: CheckResult[]) {}
  run(): Promise<CheckResult> {
    const r = this.results[Math.min(this.calls++, this.results.length - 1)]!;
    return Promise.resolve(r);
  }
}

function setup(runner: CheckRunner, extra: Partial<CheckSchedulerOptions> = {}) {
  const clock = new FakeClock();
  const changes: [string, CheckResult][] = [];
  const scheduler = new CheckScheduler({
    clock,
    random: scriptedRandom(0.5),
    onChange: (id, r) => changes.push([id, r]),
    createRunner: () => runner,
    ...extra,
  });
  return { clock, changes, scheduler };
}

const tcp = { TCP: '127.0.0.1:1', Interval: '10s' };

describe('checks/scheduler (fake clock)', () => {
  it('staggers the first run, then runs every interval', async () => {
    const runner = new ListRunner([pass]);
    const { clock, scheduler } = setup(runner);
    scheduler.add('c1', tcp);
    await clock.advance(4999);
    expect(runner.calls).to.equal(0); // stagger = 0.5 * 10s
    await clock.advance(1);
    expect(runner.calls).to.equal(1);
    await clock.advance(10_000);
    expect(runner.calls).to.equal(2);
    await clock.advance(30_000);
    expect(runner.calls).to.equal(5);
    await scheduler.stop();
  });

  it('reports only changes of status or output', async () => {
    const runner = new ListRunner([pass, pass, { status: 'passing', output: 'ok2' }, fail, fail]);
    const { clock, changes, scheduler } = setup(runner);
    expect(scheduler.add('c1', tcp)).to.deep.equal({
      id: 'c1',
      kind: 'tcp',
      status: 'critical',
      output: '',
    });
    await clock.advance(5000 + 4 * 10_000);
    expect(runner.calls).to.equal(5);
    expect(changes).to.deep.equal([
      ['c1', pass],
      ['c1', { status: 'passing', output: 'ok2' }],
      ['c1', fail],
    ]);
    expect(scheduler.list()).to.deep.equal([{ id: 'c1', kind: 'tcp', ...fail }]);
    await scheduler.stop();
  });

  it('applies SuccessBeforePassing and FailuresBeforeWarning/Critical', async () => {
    const runner = new ListRunner([pass, pass, fail, fail, fail, pass]);
    const { clock, changes, scheduler } = setup(runner);
    scheduler.add('c1', {
      ...tcp,
      SuccessBeforePassing: 2,
      FailuresBeforeWarning: 2,
      FailuresBeforeCritical: 3,
    });
    const statuses = async (): Promise<string[]> => {
      await clock.advance(10_000);
      return changes.map(([, r]) => r.status);
    };
    await clock.advance(5000); // run 1: pass, held back
    expect(changes).to.deep.equal([]);
    expect(await statuses()).to.deep.equal(['passing']); // run 2
    expect(await statuses()).to.deep.equal(['passing']); // run 3: first failure held
    expect(await statuses()).to.deep.equal(['passing', 'warning']);
    expect(await statuses()).to.deep.equal(['passing', 'warning', 'critical']);
    // one success is not enough to pass again
    expect(await statuses()).to.deep.equal(['passing', 'warning', 'critical']);
    expect(await statuses()).to.deep.equal(['passing', 'warning', 'critical', 'passing']);
    await scheduler.stop();
  });

  it('never runs two instances at once and caps the timeout at the interval', async () => {
    const runner = new ManualRunner();
    const { clock, scheduler } = setup(runner);
    scheduler.add('c1', { ...tcp, Timeout: '1m' });
    await clock.advance(5000);
    expect(runner.runs).to.have.lengthOf(1);
    expect(runner.runs[0]!.timeoutMs).to.equal(10_000);
    await clock.advance(60_000); // the run is still going: nothing new starts
    expect(runner.runs).to.have.lengthOf(1);
    await runner.finish(pass);
    await clock.advance(10_000);
    expect(runner.runs).to.have.lengthOf(2);
    expect(runner.maxActive).to.equal(1);
    await runner.finish(pass);
    await scheduler.stop();
  });

  it('turns a throwing runner into critical with the error as output', async () => {
    const runner = new ManualRunner();
    const { clock, changes, scheduler } = setup(runner, {});
    scheduler.add('c1', tcp, 'passing');
    await clock.advance(5000);
    await runner.finish(new Error('boom'));
    expect(changes).to.deep.equal([['c1', { status: 'critical', output: 'boom' }]]);
    await clock.advance(10_000);
    expect(runner.runs).to.have.lengthOf(2); // still scheduled
    await runner.finish(pass);
    await scheduler.stop();
  });

  it('survives an onChange listener that throws', async () => {
    const runner = new ListRunner([pass, fail]);
    const clock = new FakeClock();
    let calls = 0;
    const scheduler = new CheckScheduler({
      clock,
      random: scriptedRandom(0),
      createRunner: () => runner,
      onChange: () => {
        calls++;
        throw new Error('listener broke');
      },
    });
    scheduler.add('c1', tcp);
    await clock.advance(10_000);
    expect(calls).to.equal(2);
    await scheduler.stop();
  });

  it('uses initialStatus, else def.Status, else critical', () => {
    const { scheduler } = setup(new ListRunner([pass]));
    expect(scheduler.add('a', tcp, 'warning').status).to.equal('warning');
    expect(scheduler.add('b', { ...tcp, Status: 'passing' }).status).to.equal('passing');
    expect(scheduler.add('c', tcp).status).to.equal('critical');
    void scheduler.stop();
  });

  it('remove() cancels the run in flight and reports nothing after', async () => {
    const runner = new ManualRunner();
    const { clock, changes, scheduler } = setup(runner);
    scheduler.add('c1', tcp);
    await clock.advance(5000);
    expect(scheduler.remove('c1')).to.equal(true);
    expect(runner.runs[0]!.signal!.aborted).to.equal(true);
    await runner.finish(pass);
    await clock.advance(60_000);
    expect(changes).to.deep.equal([]);
    expect(runner.runs).to.have.lengthOf(1);
    expect(scheduler.remove('c1')).to.equal(false);
    expect(scheduler.list()).to.deep.equal([]);
    expect(clock.pending).to.equal(0);
  });

  it('update() keeps the state, drops the old run and does not overlap it', async () => {
    const runner = new ManualRunner();
    const { clock, changes, scheduler } = setup(runner);
    scheduler.add('c1', tcp, 'passing');
    await clock.advance(5000);
    expect(runner.runs).to.have.lengthOf(1);
    scheduler.update('c1', { ...tcp, Interval: '20s' });
    expect(runner.runs[0]!.signal!.aborted).to.equal(true);
    await clock.advance(60_000);
    expect(runner.runs).to.have.lengthOf(1); // the old run has not settled yet
    await runner.finish(fail); // the old definition's result is ignored
    expect(changes).to.deep.equal([]);
    expect(scheduler.get('c1')!.status).to.equal('passing');
    await clock.advance(10_000); // stagger 0.5 * 20s
    expect(runner.runs).to.have.lengthOf(2);
    expect(runner.maxActive).to.equal(1);
    await runner.finish(fail);
    expect(changes).to.deep.equal([['c1', fail]]);
    await scheduler.stop();
  });

  it('add() refuses a used id; update() and ttlUpdate() refuse unknown ones', () => {
    const { scheduler } = setup(new ListRunner([pass]));
    scheduler.add('c1', tcp);
    expect(() => scheduler.add('c1', tcp)).to.throw(MeshError, /already registered/);
    expect(() => scheduler.update('nope', tcp)).to.throw(MeshError, /Unknown check ID "nope"/);
    expect(() => scheduler.ttlUpdate('nope', 'passing', '')).to.throw(MeshError, /Unknown/);
    expect(() => scheduler.ttlUpdate('c1', 'passing', '')).to.throw(MeshError, /not a TTL check/);
    expect(() => scheduler.add('bad', { TCP: 'x:1' })).to.throw(MeshError, /Interval/);
    expect(scheduler.has('bad')).to.equal(false);
    void scheduler.stop();
  });

  it('runs TTL checks: updates report, silence expires', async () => {
    const { clock, changes, scheduler } = setup(new ListRunner([pass]));
    scheduler.add('t1', { TTL: '30s' });
    expect(scheduler.ttlUpdate('t1', 'passing', 'all good')).to.include({ status: 'passing' });
    await clock.advance(29_000);
    scheduler.ttlUpdate('t1', 'passing', 'all good'); // no change, no report
    await clock.advance(29_000);
    expect(changes).to.deep.equal([['t1', { status: 'passing', output: 'all good' }]]);
    await clock.advance(1000);
    expect(changes[1]).to.deep.equal(['t1', { status: 'critical', output: TTL_EXPIRED }]);
    scheduler.ttlUpdate('t1', 'warning', 'degraded');
    expect(scheduler.get('t1')).to.deep.equal({
      id: 't1',
      kind: 'ttl',
      status: 'warning',
      output: 'degraded',
    });
    await scheduler.stop();
    expect(clock.pending).to.equal(0);
  });

  it('refuses script checks unless enabled, and says how to enable them', () => {
    const { scheduler } = setup(new ListRunner([pass]));
    let err: unknown;
    try {
      scheduler.add('s1', { ScriptArgs: ['/bin/true'], Interval: '10s' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(MeshError);
    expect((err as MeshError).kind).to.equal('user');
    expect((err as MeshError).message)
      .to.match(/disabled/)
      .and.match(/--enable-script-checks/);
    expect(scheduler.has('s1')).to.equal(false);
    // nor can a check be turned into one by update()
    scheduler.add('c1', tcp);
    expect(() => scheduler.update('c1', { ScriptArgs: ['/bin/true'], Interval: '10s' })).to.throw(
      MeshError,
      /--enable-script-checks/,
    );
    void scheduler.stop();

    const enabled = setup(new ListRunner([pass]), { enableScriptChecks: true }).scheduler;
    expect(enabled.add('s1', { ScriptArgs: ['/bin/true'], Interval: '10s' }).kind).to.equal(
      'script',
    );
    void enabled.stop();
  });
});
