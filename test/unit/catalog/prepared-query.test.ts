/**
 * Prepared queries, events and coordinates in the state machine as pure logic: definitions
 * validated with field names, execution filters, templates, the event ring, snapshots.
 */
import { expect } from 'chai';
import { normalizePreparedQuery } from '../../../src/api/index.js';
import type { CheckSpec, Command } from '../../../src/catalog/state/commands.js';
import { EVENT_RING_SIZE } from '../../../src/catalog/state/event-table.js';
import { executeQuery, renderedQuery } from '../../../src/catalog/state/query-exec.js';
import type { QuerySpec } from '../../../src/catalog/state/query-table.js';
import { StateStore } from '../../../src/catalog/state/state-store.js';
import { isMeshError } from '../../../src/core/index.js';

const noRandom = { next: () => 0 };

function check(id: string, status: CheckSpec['Status'], serviceID: string): CheckSpec {
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

function register(
  node: string,
  id: string,
  tags: string[],
  status: CheckSpec['Status'] = 'passing',
): Command {
  return {
    type: 'register',
    node: {
      ID: '',
      Node: node,
      Address: '10.0.0.1',
      Datacenter: 'dc1',
      TaggedAddresses: {},
      Meta: {},
    },
    skipNodeUpdate: false,
    service: {
      ID: id,
      Service: 'web',
      Tags: tags,
      Meta: { v: id },
      Port: 80,
      Address: '',
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
    },
    checks: [check(`chk-${id}`, status, id)],
  };
}

function spec(id: string, body: unknown): QuerySpec {
  const q = normalizePreparedQuery(body);
  return { ID: id, TokenHash: '', ...q };
}

function refusal(body: unknown): string {
  try {
    normalizePreparedQuery(body);
  } catch (err) {
    if (isMeshError(err)) return err.message;
    throw err;
  }
  return 'accepted';
}

describe('prepared queries, events and coordinates in the state machine', () => {
  let st: StateStore;
  let index: number;
  const apply = (cmd: Command) => st.apply(cmd, ++index);

  beforeEach(() => {
    st = new StateStore();
    index = 0;
    apply(register('n1', 'web-1', ['v1', 'primary']));
    apply(register('n2', 'web-2', ['v1', 'Canary'], 'warning'));
    apply(register('n3', 'web-3', ['v2'], 'critical'));
  });

  const run = (body: unknown, asked = 'q') => {
    const stored = { ...spec('id-1', body), CreateIndex: 1, ModifyIndex: 1 };
    const q = renderedQuery(stored, asked);
    return executeQuery(st, q, 'dc1', { near: '', limit: 0, connect: false, random: noRandom })
      .value;
  };
  const ids = (v: ReturnType<typeof run>) => v.nodes.map((e) => e.Service.ID).sort();

  it('leaves out critical instances, warning ones too with OnlyPassing, except ignored checks', () => {
    expect(ids(run({ Service: { Service: 'web' } }))).to.deep.equal(['web-1', 'web-2']);
    expect(ids(run({ Service: { Service: 'web', OnlyPassing: true } }))).to.deep.equal(['web-1']);
    expect(
      ids(run({ Service: { Service: 'web', OnlyPassing: true, IgnoreCheckIDs: ['chk-web-2'] } })),
    ).to.deep.equal(['web-1', 'web-2']);
  });

  it('requires plain tags and excludes !tags, case-insensitively; matches ServiceMeta', () => {
    expect(ids(run({ Service: { Service: 'web', Tags: ['V1', '!canary'] } }))).to.deep.equal([
      'web-1',
    ]);
    expect(ids(run({ Service: { Service: 'web', ServiceMeta: { v: 'web-2' } } }))).to.deep.equal([
      'web-2',
    ]);
  });

  it('reports the failover datacenters it could not query when nothing matched', () => {
    const v = run({
      Service: {
        Service: 'web',
        Tags: ['none'],
        Failover: { NearestN: 1, Datacenters: ['dc1', 'dc9'] },
      },
    });
    expect(v.nodes).to.deep.equal([]);
    expect(v.skipped).to.deep.equal(['NearestN=1', 'dc9']);
    expect(
      run({ Service: { Service: 'web', Failover: { Datacenters: ['dc9'] } } }).skipped,
    ).to.deep.equal([]);
  });

  it('renders templates: name parts, regexp groups, RemoveEmptyTags', () => {
    const tpl = {
      Name: 'pick-',
      Template: {
        Type: 'name_prefix_match',
        Regexp: '^pick-([a-z]+)-?(v[0-9])?$',
        RemoveEmptyTags: true,
      },
      Service: { Service: '${match(1)}', Tags: ['${match(2)}'] },
    };
    expect(ids(run(tpl, 'pick-web-v2'))).to.deep.equal([]); // web-3 (v2) is critical
    expect(ids(run(tpl, 'pick-web'))).to.deep.equal(['web-1', 'web-2']);
    const stored = {
      ...spec('t', { ...tpl, Service: { Service: '${name.suffix}' } }),
      CreateIndex: 1,
      ModifyIndex: 1,
    };
    expect(renderedQuery(stored, 'pick-web').Service.Service).to.equal('web');
  });

  it('refuses bad definitions naming the field', () => {
    expect(refusal({})).to.include('Service: missing');
    expect(refusal({ Service: { Service: 'x', Tags: 'a' } })).to.include('Service.Tags');
    expect(refusal({ Service: { Service: 'x' }, Template: { Type: 'regex' } })).to.include(
      'Template.Type',
    );
    expect(
      refusal({ Template: { Type: 'name_prefix_match' }, Service: { Service: '${nope}' } }),
    ).to.include('unknown template variable');
    expect(
      refusal({
        Template: { Type: 'name_prefix_match', Regexp: '(?P<x>a)' },
        Service: { Service: 'x' },
      }),
    ).to.include('Template.Regexp');
    expect(
      refusal({ Name: '8f246b77-f3e1-ff88-5b48-8ec93abf3e05', Service: { Service: 'x' } }),
    ).to.include('UUID');
    expect(
      refusal({ Service: { Service: 'x', Failover: { Targets: [{ PeerName: 'p' }] } } }),
    ).to.include('PeerName');
    expect(refusal({ Near: 'a', Service: { Service: 'x', Near: 'b' } })).to.include('Near');
    expect(refusal({ Service: { Service: 'x' }, DNS: { TTL: 'soon' } })).to.include('DNS.TTL');
  });

  it('keeps names unique, one catch-all template, and drops queries with their session', () => {
    const set = (id: string, body: unknown, create = true) =>
      apply({ type: 'query-set', query: spec(id, body), create });
    expect(set('a', { Name: 'x', Service: { Service: 'web' } }).ok).to.equal(true);
    const dup = set('b', { Name: 'x', Service: { Service: 'web' } });
    expect(dup).to.include({ ok: false, status: 409 });
    const all = { Template: { Type: 'name_prefix_match' }, Service: { Service: '${name.full}' } };
    expect(set('c', all).ok).to.equal(true);
    expect(set('d', all)).to.include({ ok: false, status: 409 });
    expect(set('zz', { Service: { Service: 'web' } }, false)).to.include({
      ok: false,
      status: 404,
    });
    expect(st.queries.resolve('x')?.ID).to.equal('a');
    expect(st.queries.resolve('anything')?.ID).to.equal('c');

    apply({
      type: 'session-create',
      session: {
        ID: 's1',
        Name: '',
        Node: 'n1',
        LockDelay: 0,
        Behavior: 'release',
        TTL: '',
        NodeChecks: [],
        ServiceChecks: null,
      },
    });
    expect(set('e', { Name: 'tied', Session: 's1', Service: { Service: 'web' } }).ok).to.equal(
      true,
    );
    expect(set('f', { Name: 'bad', Session: 'nope', Service: { Service: 'web' } }).ok).to.equal(
      false,
    );
    apply({ type: 'session-destroy', id: 's1', at: 0 });
    expect(st.queries.get('e')).to.equal(undefined);
  });

  it('keeps the last 256 events with rising LTime, and everything in a snapshot', () => {
    for (let i = 0; i < EVENT_RING_SIZE + 3; i++)
      apply({
        type: 'event-fire',
        event: {
          ID: `e${i}`,
          Name: 'n',
          Payload: null,
          NodeFilter: '',
          ServiceFilter: '',
          TagFilter: '',
        },
      });
    expect(st.events.events).to.have.length(EVENT_RING_SIZE);
    expect(st.events.events[0]!.ID).to.equal('e3');
    expect(st.events.events.at(-1)!.LTime).to.equal(EVENT_RING_SIZE + 3);
    apply({
      type: 'query-set',
      query: spec('q1', { Name: 'x', Service: { Service: 'web' } }),
      create: true,
    });
    const coord = { Vec: [1, 0, 0, 0, 0, 0, 0, 0], Error: 0.1, Adjustment: 0, Height: 0 };
    expect(
      apply({ type: 'coordinate-set', entries: [{ Node: 'n1', Segment: '', Coord: coord }] }).ok,
    ).to.equal(true);
    expect(
      apply({ type: 'coordinate-set', entries: [{ Node: 'ghost', Segment: '', Coord: coord }] }).ok,
    ).to.equal(false);

    const copy = StateStore.deserialize(st.serialize());
    expect(copy.events.toJSON()).to.deep.equal(st.events.toJSON());
    expect(copy.queries.get('q1')).to.deep.equal(st.queries.get('q1'));
    expect(copy.coordinates.get('n1')?.Coord).to.deep.equal(coord);
    // The next event continues the Lamport clock; a coordinate goes with its node.
    const next = copy.apply(
      {
        type: 'event-fire',
        event: {
          ID: 'x',
          Name: 'n',
          Payload: null,
          NodeFilter: '',
          ServiceFilter: '',
          TagFilter: '',
        },
      },
      index + 1,
    );
    expect((next as { value: { LTime: number } }).value.LTime).to.equal(EVENT_RING_SIZE + 4);
    copy.apply({ type: 'deregister', node: 'n1' }, index + 2);
    expect(copy.coordinates.get('n1')).to.equal(undefined);
  });
});
