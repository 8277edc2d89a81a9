import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RedirectManager,
  type Applier,
  type RedirectManagerOptions,
} from '../../../src/agent/capture/redirect-manager.js';
import type { SidecarCapture } from '../../../src/agent/capture/types.js';
import {
  NEEDS_CAP_NET_ADMIN,
  type ApplyResult,
  type NftStatus,
} from '../../../src/agent/nftables/nft.js';
import { renderRuleset, type RedirectPlan } from '../../../src/agent/nftables/ruleset.js';
import { FakeClock, flush } from '../checks/fake-clock.js';

/** Records every call; apply can be told to fail, status to report drift once. */
class FakeApplier implements Applier {
  calls: string[] = [];
  applied: RedirectPlan[] = [];
  failWith: string | undefined;
  nextStatus: NftStatus['state'] = 'in-sync';
  /** What live() reports with nothing applied: a listing, undefined (no table), or an error. */
  liveListing: string | undefined;
  liveError: string | undefined;

  apply(plan: RedirectPlan): Promise<ApplyResult> {
    this.calls.push('apply');
    if (this.failWith !== undefined) return Promise.reject(new Error(this.failWith));
    this.applied.push(structuredClone(plan));
    return Promise.resolve({ listing: renderRuleset(plan) });
  }

  remove(): Promise<void> {
    this.calls.push('remove');
    return Promise.resolve();
  }

  status(): Promise<NftStatus> {
    this.calls.push('status');
    const state = this.nextStatus;
    this.nextStatus = 'in-sync';
    return Promise.resolve(state === 'in-sync' ? { state } : { state, diff: '- x\n+ y' });
  }

  live(): Promise<string | undefined> {
    this.calls.push('live');
    if (this.liveError !== undefined) return Promise.reject(new Error(this.liveError));
    return Promise.resolve(this.liveListing);
  }

  count(call: string): number {
    return this.calls.filter((c) => c === call).length;
  }
}

interface Entry {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

function logger(): RedirectManagerOptions['log'] & { entries: Entry[]; of(l: string): Entry[] } {
  const entries: Entry[] = [];
  return {
    entries,
    of: (l) => entries.filter((e) => e.level === l),
    info: (obj, msg) => entries.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => entries.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => entries.push({ level: 'error', obj, msg }),
  };
}

const USERS = new Map([
  ['web', 1001],
  ['api', 1002],
]);

function capture(
  service: 'web' | 'api',
  toPort: number,
  addresses: { address: string; port: number }[] = [],
): SidecarCapture {
  const other = service === 'web' ? 'api' : 'web';
  return {
    sidecarId: `${service}-sidecar-proxy`,
    service,
    settings: {
      captureUser: service,
      excludeInboundPorts: [],
      excludeOutboundPorts: [],
      excludeOutboundCidrs: [],
      excludeUids: [],
      redirectDns: false,
    },
    inbound: { port: service === 'web' ? 8080 : 9090, toPort: toPort + 1000 },
    outbound: [
      {
        destination: other,
        toPort,
        vip: service === 'web' ? '240.0.0.2' : '240.0.0.1',
        addresses,
      },
    ],
  };
}

describe('capture/RedirectManager', () => {
  let dir: string;
  let stateFile: string;
  let clock: FakeClock;
  const managers: RedirectManager[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-test-redirect-'));
    stateFile = join(dir, 'redirect', 'state.json');
    clock = new FakeClock();
  });

  afterEach(() => {
    for (const m of managers.splice(0)) m.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const inodes = new Map<string, number>();

  function manager(
    applier: FakeApplier,
    log = logger(),
    driftEveryMs = 60_000,
    onError?: (error: string | undefined) => void,
  ): RedirectManager {
    const m = new RedirectManager({
      cgroupInode: (path) => Promise.resolve(inodes.get(path)),
      applier,
      stateFile,
      proxyUid: 0,
      agentPorts: [8500],
      lookupUid: (u) => Promise.resolve(USERS.get(u)),
      clock,
      log,
      driftEveryMs,
      ...(onError ? { onError } : {}),
    });
    managers.push(m);
    return m;
  }

  /** Past the debounce, with the resulting apply settled. */
  async function settle(): Promise<void> {
    await clock.advance(60);
    await flush();
  }

  it('applies once per burst of changes, and not again for an identical plan', async () => {
    const applier = new FakeApplier();
    const m = manager(applier);
    await m.start();
    m.update([capture('web', 15001)], 2);
    await clock.advance(10);
    m.update([capture('web', 15001, [{ address: '10.0.0.2', port: 9090 }])], 2);
    await clock.advance(10);
    const both = [
      capture('web', 15001, [{ address: '10.0.0.2', port: 9090 }]),
      capture('api', 15101),
    ];
    m.update(both, 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);
    expect(applier.applied[0]!.outbound.map((o) => o.uid).sort()).to.deep.equal([1001, 1002]);
    expect(m.info().plan).to.deep.equal(applier.applied[0]);
    expect(m.info().ruleset).to.equal(renderRuleset(applier.applied[0]!));
    expect(m.capturing).to.equal(true);

    // The same captures again (in another order): nothing to do.
    m.update([...both].reverse(), 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);

    // A new endpoint: one more apply.
    m.update([both[0]!, capture('api', 15101, [{ address: '10.0.0.9', port: 8080 }])], 2);
    await settle();
    expect(applier.count('apply')).to.equal(2);
    expect(applier.applied[1]!.outbound.find((o) => o.uid === 1002)!.targets).to.deep.equal([
      { address: '10.0.0.9', port: 8080, toPort: 15101 },
    ]);
  });

  it('keeps the previous plan in force when an apply fails, and logs a repeated error once', async () => {
    const applier = new FakeApplier();
    const log = logger();
    const m = manager(applier, log);
    await m.start();
    const first = [capture('web', 15001), capture('api', 15101)];
    m.update(first, 2);
    await settle();
    const inForce = m.info().plan;
    expect(inForce).to.not.equal(undefined);

    applier.failWith = 'nft: Error: Could not process rule: No such file or directory';
    const second = [capture('web', 15002), capture('api', 15101)];
    m.update(second, 2);
    await settle();
    expect(applier.count('apply')).to.equal(2);
    expect(m.info().plan).to.deep.equal(inForce);
    expect(m.info().lastError).to.include('Could not process rule');
    expect(log.of('error')).to.have.length(1);

    // The same failure again: retried, still one log line.
    m.update([...second], 2);
    await settle();
    m.update([...second], 2);
    await settle();
    expect(applier.count('apply')).to.equal(4);
    expect(log.of('error')).to.have.length(1);
    expect(m.info().plan).to.deep.equal(inForce);

    // The saved plan is still the one in force.
    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { plan: RedirectPlan };
    expect(saved.plan).to.deep.equal(inForce);

    applier.failWith = undefined;
    m.update([...second], 2);
    await settle();
    expect(m.info().lastError).to.equal(undefined);
    expect(m.info().plan!.outbound.find((o) => o.uid === 1001)!.vips).to.deep.equal([
      { address: '240.0.0.2', toPort: 15002 },
    ]);
  });

  it('tells onError when the wanted ruleset stops being in force, and when it is again', async () => {
    const applier = new FakeApplier();
    const seen: (string | undefined)[] = [];
    const m = manager(applier, logger(), 60_000, (e) => seen.push(e));
    await m.start();
    applier.failWith = `nft -f failed: Operation not permitted: ${NEEDS_CAP_NET_ADMIN}`;
    m.update([capture('web', 15001)], 1);
    await settle();
    m.update([capture('web', 15001)], 1);
    await settle();
    const failed = `applying the nftables ruleset: ${applier.failWith}`;
    expect(seen).to.deep.equal([failed]);
    expect(m.error).to.equal(failed);
    applier.failWith = undefined;
    m.update([capture('web', 15001)], 1);
    await settle();
    expect(seen).to.deep.equal([failed, undefined]);
    expect(m.error).to.equal(undefined);
  });

  it('covers() says whether the ruleset in force captures for a sidecar', async () => {
    const applier = new FakeApplier();
    const m = manager(applier);
    await m.start();
    const web = capture('web', 15001);
    expect(m.covers(web)).to.equal(false);
    m.update([web], 1);
    await settle();
    expect(m.covers(web)).to.equal(true);
    expect(m.covers(undefined)).to.equal(false);
    // A failed change leaves the old ruleset, which still covers web but not a moved port.
    applier.failWith = 'nft: refused';
    const moved = capture('web', 15005);
    m.update([moved], 1);
    await settle();
    expect(m.error).to.contain('refused');
    expect(m.covers(web)).to.equal(true);
    expect(m.covers(moved)).to.equal(false);
  });

  it('status with nothing in force reports a table left there, and an unreadable one as unknown', async () => {
    const applier = new FakeApplier();
    const m = manager(applier);
    await m.start();
    expect(await m.status()).to.deep.equal({ state: 'absent' });
    applier.liveListing = 'table inet trellis {\n  chain output {\n  }\n}\n';
    expect(await m.status()).to.deep.equal({
      state: 'drifted',
      diff: '+ table inet trellis {\n+ chain output {\n+ }\n+ }',
    });
    applier.liveError = 'nft list table failed: Operation not permitted';
    expect(await m.status()).to.deep.equal({
      state: 'unknown',
      error: 'nft list table failed: Operation not permitted',
    });
  });

  it('reports an unknown capture user as the error, changing nothing', async () => {
    const applier = new FakeApplier();
    const m = manager(applier);
    await m.start();
    const ghost = capture('web', 15001);
    ghost.settings = { ...ghost.settings, captureUser: 'ghost' };
    m.update([ghost], 1);
    await settle();
    expect(applier.calls).to.deep.equal([]);
    expect(m.info().lastError).to.include('"ghost"');
    expect((await m.dryRun()) as { error: string }).to.have.property('error');
  });

  it('restores the saved plan at start, keeps it against a partial set, replaces it once all report', async () => {
    const first = new FakeApplier();
    const m1 = manager(first);
    await m1.start();
    m1.update([capture('web', 15001), capture('api', 15101)], 2);
    await settle();
    const saved = first.applied[0]!;
    m1.stop();

    const applier = new FakeApplier();
    const m2 = manager(applier);
    await m2.start();
    // Restored before any update.
    expect(applier.calls).to.deep.equal(['apply']);
    expect(applier.applied[0]).to.deep.equal(saved);
    expect(m2.info().plan).to.deep.equal(saved);

    // One of two sidecars has reported (with a different listener port): not applied.
    m2.update([capture('web', 15005)], 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);
    expect(m2.info().plan).to.deep.equal(saved);

    // Both have: the new plan replaces the restored one.
    m2.update([capture('web', 15005), capture('api', 15101)], 2);
    await settle();
    expect(applier.count('apply')).to.equal(2);
    expect(m2.info().plan!.outbound.find((o) => o.uid === 1001)!.vips).to.deep.equal([
      { address: '240.0.0.2', toPort: 15005 },
    ]);
  });

  it('pause() removes the table and survives a restart; resume() applies again', async () => {
    const applier = new FakeApplier();
    const log = logger();
    const m1 = manager(applier, log);
    await m1.start();
    const captures = [capture('web', 15001), capture('api', 15101)];
    m1.update(captures, 2);
    await settle();
    await m1.pause();
    expect(applier.calls).to.deep.equal(['apply', 'remove']);
    expect(m1.info()).to.deep.include({ paused: true, repairs: 0 });
    expect(m1.info().plan).to.equal(undefined);
    expect(m1.capturing).to.equal(false);
    // Changes while paused apply nothing.
    m1.update([capture('web', 15009), capture('api', 15101)], 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);
    m1.stop();

    // A restarted agent stays paused: nothing restored, nothing applied.
    const after = new FakeApplier();
    const m2 = manager(after);
    await m2.start();
    m2.update(captures, 2);
    await settle();
    expect(after.calls).to.deep.equal([]);
    expect(m2.info().paused).to.equal(true);

    await m2.resume();
    expect(after.calls).to.deep.equal(['apply']);
    expect(m2.info().paused).to.equal(false);
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { paused: boolean };
    expect(state.paused).to.equal(false);
  });

  it('repairs drift: a changed or deleted table is applied again and counted', async () => {
    const applier = new FakeApplier();
    const log = logger();
    const m = manager(applier, log, 1000);
    await m.start();
    m.update([capture('web', 15001), capture('api', 15101)], 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);

    await clock.advance(1000);
    expect(applier.count('status')).to.be.at.least(1);
    expect(applier.count('apply')).to.equal(1);

    applier.nextStatus = 'drifted';
    await clock.advance(1000);
    expect(applier.count('apply')).to.equal(2);
    expect(m.info().repairs).to.equal(1);
    expect(log.of('warn').map((e) => e.msg)).to.deep.equal([
      'the nftables table inet trellis was changed; repairing it',
    ]);

    applier.nextStatus = 'absent';
    await clock.advance(1000);
    expect(applier.count('apply')).to.equal(3);
    expect(m.info().repairs).to.equal(2);
    expect(applier.applied[2]).to.deep.equal(applier.applied[0]);
  });

  it('retries a failed apply on the next drift tick, without a new update', async () => {
    const applier = new FakeApplier();
    const log = logger();
    const m = manager(applier, log, 1000);
    await m.start();
    applier.failWith = 'nft: Error: Could not process rule: Device or resource busy';
    m.update([capture('web', 15001), capture('api', 15101)], 2);
    await settle();
    expect(applier.count('apply')).to.equal(1);
    expect(m.info().plan).to.equal(undefined);
    expect(m.info().lastError).to.include('busy');

    // Still failing: retried, logged once.
    await clock.advance(1000);
    expect(applier.count('apply')).to.equal(2);
    expect(log.of('error')).to.have.length(1);

    // nft works again: the next tick applies the wanted plan.
    applier.failWith = undefined;
    await clock.advance(1000);
    expect(applier.count('apply')).to.equal(3);
    expect(m.info().lastError).to.equal(undefined);
    expect(m.info().plan).to.deep.equal(applier.applied[0]);
    expect(m.capturing).to.equal(true);
  });

  it('never calls the applier without transparent sidecars or a saved plan', async () => {
    const applier = new FakeApplier();
    const m = manager(applier, logger(), 1000);
    await m.start();
    m.update([], 0);
    await settle();
    await clock.advance(5000);
    await m.reconcile();
    expect(applier.calls).to.deep.equal([]);
    expect(m.info()).to.deep.equal({ paused: false, repairs: 0 });
    expect((await m.status()).state).to.equal('absent');
  });

  it('captures a cgroup once it exists, and reloads the rules when it is recreated', async () => {
    inodes.clear();
    const applier = new FakeApplier();
    const m = manager(applier, logger(), 2000);
    await m.start();
    const c = capture('web', 15001);
    c.settings = {
      ...c.settings,
      captureUser: undefined,
      captureCgroup: 'system.slice/web.service',
    };
    m.update([c], 1);
    await settle();
    // The unit is not running: inbound only, nothing to capture outbound.
    expect(applier.applied.at(-1)!.outbound).to.deep.equal([]);
    inodes.set('system.slice/web.service', 100);
    await clock.advance(2000);
    await flush();
    expect(applier.applied.at(-1)!.outbound.map((o) => o.cgroup)).to.deep.equal([
      'system.slice/web.service',
    ]);
    const applies = applier.count('apply');
    await clock.advance(2000);
    await flush();
    expect(applier.count('apply')).to.equal(applies); // same cgroup, same rules: nothing to do
    inodes.set('system.slice/web.service', 101); // the unit restarted: a new cgroup id
    await clock.advance(2000);
    await flush();
    expect(applier.count('apply')).to.equal(applies + 1);
  });
});
