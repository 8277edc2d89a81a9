/** The catalog state machine as pure logic: commands in, tables, indexes and wake-ups out. */
import { expect } from 'chai';
import type { CheckSpec, Command, RegisterCommand } from '../../../src/catalog/state/commands.js';
import * as Q from '../../../src/catalog/state/queries.js';
import {
  serializeCapture,
  StateStore,
  type TxnResult,
} from '../../../src/catalog/state/state-store.js';

function node(name: string, address = '198.18.0.1'): RegisterCommand['node'] {
  return { ID: '', Node: name, Address: address, Datacenter: 'dc1', TaggedAddresses: {}, Meta: {} };
}

function check(id: string, status: CheckSpec['Status'], serviceID = ''): CheckSpec {
  return {
    CheckID: id,
    Name: id,
    Status: status,
    Notes: '',
    Output: '',
    ServiceID: serviceID,
    Type: '',
    Interval: '',
    Timeout: '',
    Definition: {},
  };
}

function registerCmd(
  nodeName: string,
  svc?: { id: string; name: string; tags?: string[] },
  checks: CheckSpec[] = [],
): Command {
  return {
    type: 'register',
    node: node(nodeName),
    skipNodeUpdate: false,
    ...(svc
      ? {
          service: {
            ID: svc.id,
            Service: svc.name,
            Tags: svc.tags ?? [],
            Meta: {},
            Port: 80,
            Address: '',
            Weights: { Passing: 1, Warning: 1 },
            EnableTagOverride: false,
          },
        }
      : {}),
    checks,
  };
}

class Harness {
  st = new StateStore();
  index = 0;
  apply(cmd: Command): unknown {
    const r = this.st.apply(cmd, ++this.index);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  }
  try(cmd: Command) {
    return this.st.apply(cmd, ++this.index);
  }
}

describe('catalog state store', () => {
  it('registers nodes, services and checks with create and modify indexes', () => {
    const h = new Harness();
    h.apply(
      registerCmd('n1', { id: 'web-1', name: 'web', tags: ['a'] }, [
        check('c1', 'passing', 'web-1'),
      ]),
    );
    const r = Q.healthService(h.st, 'web');
    expect(r.index).to.equal(1);
    expect(r.value).to.have.length(1);
    expect(r.value[0]!.Service).to.include({ ID: 'web-1', CreateIndex: 1, ModifyIndex: 1 });
    expect(r.value[0]!.Checks[0]).to.include({ CheckID: 'c1', ServiceName: 'web' });
    expect(Q.catalogServices(h.st).value).to.deep.equal({ web: ['a'] });
  });

  it('does not bump indexes when a registration changes nothing', () => {
    const h = new Harness();
    const cmd = registerCmd('n1', { id: 'web-1', name: 'web' }, [check('c1', 'passing', 'web-1')]);
    h.apply(cmd);
    h.apply(cmd);
    expect(Q.healthService(h.st, 'web').index).to.equal(1);
    expect(Q.catalogServices(h.st).index).to.equal(1);
  });

  it('moves only the indexes of what a write touched', () => {
    const h = new Harness();
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web' }));
    h.apply(registerCmd('n2', { id: 'db-1', name: 'db' }));
    expect(Q.healthService(h.st, 'web').index).to.equal(1);
    expect(Q.healthService(h.st, 'db').index).to.equal(2);
    h.apply({ type: 'kv-set', key: 'k', value: null, flags: 0, at: 0 });
    expect(Q.healthService(h.st, 'web').index).to.equal(1);
    expect(Q.kvGet(h.st, 'k', false).index).to.equal(3);
  });

  it('a node-level check change shows in every service of that node', () => {
    const h = new Harness();
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web' }, [check('serfHealth', 'passing')]));
    h.apply(registerCmd('n1', { id: 'api-1', name: 'api' }));
    h.apply({
      type: 'check-status',
      node: 'n1',
      checkID: 'serfHealth',
      status: 'critical',
      output: 'dead',
    });
    expect(Q.healthService(h.st, 'web').index).to.equal(3);
    expect(Q.healthService(h.st, 'api').index).to.equal(3);
    expect(Q.healthService(h.st, 'web', { passing: true }).value).to.have.length(0);
  });

  it('deregistering a node removes its services and checks and raises the index', () => {
    const h = new Harness();
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web' }, [check('c1', 'passing', 'web-1')]));
    h.apply({ type: 'deregister', node: 'n1' });
    expect(Q.healthService(h.st, 'web').value).to.deep.equal([]);
    expect(Q.healthService(h.st, 'web').index).to.equal(2);
    expect(Q.catalogNode(h.st, 'n1').value).to.equal(null);
    expect(h.st.catalog.instanceCount).to.equal(0);
  });

  it('wakes only the watchers whose reads a write changes', () => {
    const h = new Harness();
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web' }));
    const woke: string[] = [];
    h.st.hub.subscribe(Q.healthService(h.st, 'web').watch, () => woke.push('web'));
    h.st.hub.subscribe(Q.kvGet(h.st, 'app/', true).watch, () => woke.push('app/'));
    h.st.hub.subscribe(Q.kvGet(h.st, 'app/x', false).watch, () => woke.push('app/x'));
    h.apply(registerCmd('n2', { id: 'db-1', name: 'db' }));
    h.apply({ type: 'kv-set', key: 'other', value: null, flags: 0, at: 0 });
    expect(woke).to.deep.equal([]);
    h.apply({ type: 'kv-set', key: 'app/y', value: null, flags: 0, at: 0 });
    expect(woke).to.deep.equal(['app/']);
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web', tags: ['new'] }));
    expect(woke).to.deep.equal(['app/', 'web']);
    expect(h.st.hub.size).to.equal(1); // app/x still waits
  });

  it('applies KV cas rules', () => {
    const h = new Harness();
    expect(h.apply({ type: 'kv-set', key: 'k', value: 'YQ==', flags: 0, cas: 0, at: 0 })).to.equal(
      true,
    );
    expect(h.apply({ type: 'kv-set', key: 'k', value: 'Yg==', flags: 0, cas: 0, at: 0 })).to.equal(
      false,
    );
    expect(h.apply({ type: 'kv-set', key: 'k', value: 'Yg==', flags: 0, cas: 99, at: 0 })).to.equal(
      false,
    );
    expect(h.apply({ type: 'kv-set', key: 'k', value: 'Yg==', flags: 7, cas: 1, at: 0 })).to.equal(
      true,
    );
    expect(h.st.kv.get('k')).to.include({
      Value: 'Yg==',
      Flags: 7,
      CreateIndex: 1,
      ModifyIndex: 4,
    });
    expect(h.apply({ type: 'kv-delete', key: 'k', recurse: false, cas: 1 })).to.equal(false);
    expect(h.apply({ type: 'kv-delete', key: 'k', recurse: false, cas: 4 })).to.equal(true);
    expect(Q.kvGet(h.st, 'k', false).index).to.equal(6);
  });

  it('lists keys up to a separator', () => {
    const h = new Harness();
    for (const k of ['a/x/1', 'a/x/2', 'a/y', 'a/z/3', 'b'])
      h.apply({ type: 'kv-set', key: k, value: null, flags: 0, at: 0 });
    expect(Q.kvKeys(h.st, 'a/', '/').value).to.deep.equal(['a/x/', 'a/y', 'a/z/']);
    expect(Q.kvKeys(h.st, '', '').value).to.deep.equal(['a/x/1', 'a/x/2', 'a/y', 'a/z/3', 'b']);
  });

  function sessionSetup(h: Harness, behavior: 'release' | 'delete' = 'release'): string {
    h.apply(registerCmd('n1', undefined, [check('serfHealth', 'passing')]));
    h.apply({
      type: 'session-create',
      session: {
        ID: 's1',
        Name: '',
        Node: 'n1',
        LockDelay: 15e9,
        Behavior: behavior,
        TTL: '',
        NodeChecks: ['serfHealth'],
        ServiceChecks: null,
      },
    });
    return 's1';
  }

  it('locks: acquire, contention, release, and lock-delay after invalidation', () => {
    const h = new Harness();
    const s = sessionSetup(h);
    h.apply({
      type: 'session-create',
      session: {
        ID: 's2',
        Name: '',
        Node: 'n1',
        LockDelay: 0,
        Behavior: 'release',
        TTL: '',
        NodeChecks: [],
        ServiceChecks: null,
      },
    });
    expect(
      h.apply({ type: 'kv-set', key: 'lock', value: null, flags: 0, acquire: s, at: 1000 }),
    ).to.equal(true);
    expect(
      h.apply({ type: 'kv-set', key: 'lock', value: null, flags: 0, acquire: 's2', at: 1000 }),
    ).to.equal(false);
    expect(h.st.kv.get('lock')).to.include({ Session: s, LockIndex: 1 });
    // The node's health check fails: the session ends and its lock is released.
    h.apply({
      type: 'check-status',
      node: 'n1',
      checkID: 'serfHealth',
      status: 'critical',
      output: '',
      at: 2000,
    });
    expect(h.st.sessions.has(s)).to.equal(false);
    expect(h.st.kv.get('lock')!.Session).to.equal(undefined);
    // Within the lock-delay nobody may take it; after it, s2 can.
    expect(
      h.apply({ type: 'kv-set', key: 'lock', value: null, flags: 0, acquire: 's2', at: 5000 }),
    ).to.equal(false);
    expect(
      h.apply({ type: 'kv-set', key: 'lock', value: null, flags: 0, acquire: 's2', at: 17_000 }),
    ).to.equal(true);
    expect(h.st.kv.get('lock')).to.include({ Session: 's2', LockIndex: 2 });
  });

  it('sessions with behavior delete remove their keys', () => {
    const h = new Harness();
    const s = sessionSetup(h, 'delete');
    h.apply({ type: 'kv-set', key: 'eph', value: null, flags: 0, acquire: s, at: 0 });
    h.apply({ type: 'session-destroy', id: s, at: 0 });
    expect(h.st.kv.get('eph')).to.equal(undefined);
  });

  it('refuses sessions on unknown nodes or critical checks', () => {
    const h = new Harness();
    const r = h.try({
      type: 'session-create',
      session: {
        ID: 'x',
        Name: '',
        Node: 'ghost',
        LockDelay: 0,
        Behavior: 'release',
        TTL: '',
        NodeChecks: [],
        ServiceChecks: null,
      },
    });
    expect(r.ok).to.equal(false);
    h.apply(registerCmd('n1', undefined, [check('serfHealth', 'critical')]));
    const r2 = h.try({
      type: 'session-create',
      session: {
        ID: 'x',
        Name: '',
        Node: 'n1',
        LockDelay: 0,
        Behavior: 'release',
        TTL: '',
        NodeChecks: ['serfHealth'],
        ServiceChecks: null,
      },
    });
    expect(r2.ok).to.equal(false);
  });

  it('rolls a failed transaction back completely', () => {
    const h = new Harness();
    h.apply({ type: 'kv-set', key: 'a', value: 'MQ==', flags: 0, at: 0 });
    const r = h.apply({
      type: 'txn',
      at: 0,
      ops: [
        { Verb: 'set', Key: 'a', Value: 'Mg==', Flags: 0, Index: 0, Session: '' },
        { Verb: 'delete', Key: 'a', Value: null, Flags: 0, Index: 0, Session: '' },
        { Verb: 'set', Key: 'new', Value: null, Flags: 0, Index: 0, Session: '' },
        { Verb: 'check-not-exists', Key: 'new', Value: null, Flags: 0, Index: 0, Session: '' },
      ],
    }) as TxnResult;
    expect(r.Errors).to.deep.equal([{ OpIndex: 3, What: 'key "new" exists' }]);
    expect(h.st.kv.get('a')).to.include({ Value: 'MQ==', ModifyIndex: 1 });
    expect(h.st.kv.get('new')).to.equal(undefined);
    expect(h.st.kv.tombstones.has('a')).to.equal(false);
  });

  it('keeps the tag union of /v1/catalog/services up to date as instances change', () => {
    const h = new Harness();
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web', tags: ['a', 'b'] }));
    h.apply(registerCmd('n2', { id: 'web-2', name: 'web', tags: ['b', 'c'] }));
    expect(Q.catalogServices(h.st).value).to.deep.equal({ web: ['a', 'b', 'c'] });
    h.apply(registerCmd('n1', { id: 'web-1', name: 'web', tags: ['b'] }));
    expect(Q.catalogServices(h.st).value).to.deep.equal({ web: ['b', 'c'] });
    h.apply(registerCmd('n1', { id: 'web-1', name: 'api', tags: ['z'] }));
    h.apply({ type: 'deregister', node: 'n2', serviceID: 'web-2' });
    expect(Q.catalogServices(h.st).value).to.deep.equal({ api: ['z'] });
  });

  it('serializes in slices to exactly the bytes of a one-shot serialization', async () => {
    const h = new Harness();
    for (let i = 0; i < 25; i++)
      h.apply(
        registerCmd(`n${i}`, { id: `s${i}`, name: 'web' }, [check(`c${i}`, 'passing', `s${i}`)]),
      );
    h.apply({ type: 'kv-set', key: 'k', value: 'eA==', flags: 0, at: 0 });
    let yields = 0;
    const sliced = await serializeCapture(h.st.capture(), async () => void yields++, 7);
    expect(sliced.equals(h.st.serialize())).to.equal(true);
    expect(yields).to.be.greaterThan(3);
  });

  it('serializes and restores to an identical state', () => {
    const h = new Harness();
    const s = sessionSetup(h);
    h.apply(
      registerCmd('n2', { id: 'web-1', name: 'web', tags: ['x'] }, [
        check('c', 'warning', 'web-1'),
      ]),
    );
    h.apply({ type: 'kv-set', key: 'lock', value: 'eA==', flags: 3, acquire: s, at: 0 });
    h.apply({ type: 'kv-set', key: 'gone', value: null, flags: 0, at: 0 });
    h.apply({ type: 'kv-delete', key: 'gone', recurse: false });
    const copy = StateStore.deserialize(h.st.serialize());
    expect(copy.serialize().equals(h.st.serialize())).to.equal(true);
    expect(Q.kvGet(copy, 'gone', false).index).to.equal(Q.kvGet(h.st, 'gone', false).index);
    expect(Q.healthService(copy, 'web')).to.deep.include({
      index: Q.healthService(h.st, 'web').index,
    });
    // Lock ownership survives: invalidating the session after restore releases the key.
    copy.apply({ type: 'session-destroy', id: s, at: 0 }, 100);
    expect(copy.kv.get('lock')!.Session).to.equal(undefined);
  });
});
