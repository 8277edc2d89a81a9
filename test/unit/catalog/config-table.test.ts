/**
 * Config entries and intentions in the state machine: cas, refusals that change nothing, the
 * intention commands, watch keys, and snapshots (including ones from before config entries).
 */
import { expect } from 'chai';
import type { Command } from '../../../src/catalog/state/commands.js';
import * as CQ from '../../../src/catalog/state/config-queries.js';
import { K } from '../../../src/catalog/state/index-table.js';
import { serializeCapture, StateStore } from '../../../src/catalog/state/state-store.js';
import { normalizeConfigEntry, type ConfigEntry } from '../../../src/config/config-entries.js';
import { decide, type Request } from '../../../src/policy/index.js';
import { IntentionCache } from '../../../src/agent/connect/intention-cache.js';
import { createClient } from '../../../src/client/index.js';
import { systemClock } from '../../../src/core/index.js';

class Harness {
  st = new StateStore();
  index = 0;
  at = Date.parse('2024-05-01T10:00:00Z');
  apply(cmd: Command): unknown {
    const r = this.st.apply(cmd, ++this.index);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  }
  try(cmd: Command) {
    return this.st.apply(cmd, ++this.index);
  }
  set(body: Record<string, unknown>, cas?: number) {
    return this.try({
      type: 'config-set',
      entry: normalizeConfigEntry(body),
      ...(cas !== undefined ? { cas } : {}),
      at: (this.at += 1000),
    });
  }
  upsert(source: string, destination: string, rule: Record<string, unknown>) {
    const e = normalizeConfigEntry({
      Kind: 'service-intentions',
      Name: destination,
      Sources: [{ Name: source, ...rule }],
    }) as Extract<ConfigEntry, { Kind: 'service-intentions' }>;
    return this.try({
      type: 'config-intention-set',
      destination,
      source: e.Sources[0]!,
      create: false,
      at: (this.at += 1000),
    });
  }
}

const httpDefaults = (name: string) => ({ Kind: 'service-defaults', Name: name, Protocol: 'http' });

describe('config table', () => {
  it('stores entries with create and modify indexes, by kind and name', () => {
    const h = new Harness();
    expect(h.set(httpDefaults('web'))).to.deep.equal({ ok: true, value: true });
    expect(h.set({ Kind: 'service-defaults', Name: 'api', Protocol: 'grpc' }).ok).to.equal(true);
    expect(h.set({ ...httpDefaults('web'), MaxInboundConnections: 5 }).ok).to.equal(true);
    const web = h.st.config.get('service-defaults', 'web')!;
    expect(web).to.include({ CreateIndex: 1, ModifyIndex: 3 });
    expect(h.st.config.list('service-defaults').map((e) => e.Name)).to.deep.equal(['api', 'web']);
    expect(CQ.configGet(h.st, 'service-defaults', 'web').index).to.equal(3);
    expect(CQ.configGet(h.st, 'service-defaults', 'api').index).to.equal(2);
    expect(CQ.configList(h.st, 'service-defaults').index).to.equal(3);
    expect(CQ.configList(h.st, 'proxy-defaults').index).to.equal(1);
  });

  it('cas 0 creates only; cas N writes only at ModifyIndex N; answers false otherwise', () => {
    const h = new Harness();
    expect(h.set(httpDefaults('web'), 0)).to.deep.equal({ ok: true, value: true });
    expect(h.set(httpDefaults('web'), 0)).to.deep.equal({ ok: true, value: false });
    expect(h.set(httpDefaults('web'), 7)).to.deep.equal({ ok: true, value: false });
    expect(h.set({ ...httpDefaults('web'), Protocol: 'http2' }, 1)).to.deep.equal({
      ok: true,
      value: true,
    });
    expect(h.st.config.get('service-defaults', 'web')).to.include({
      Protocol: 'http2',
      ModifyIndex: 4,
    });
    // Deletes: cas must match an existing entry.
    const del = (cas?: number) =>
      h.try({
        type: 'config-delete',
        kind: 'service-defaults',
        name: 'web',
        ...(cas !== undefined ? { cas } : {}),
      });
    expect(del(1)).to.deep.equal({ ok: true, value: false });
    expect(del(0)).to.deep.equal({ ok: true, value: false });
    expect(h.st.config.get('service-defaults', 'web')).to.not.equal(undefined);
    expect(del(4)).to.deep.equal({ ok: true, value: true });
    expect(h.st.config.get('service-defaults', 'web')).to.equal(undefined);
    expect(del()).to.deep.equal({ ok: true, value: true });
  });

  it('refuses writes and deletes that break the graph, changing nothing', () => {
    const h = new Harness();
    // A router on a tcp service.
    const router = h.set({ Kind: 'service-router', Name: 'web', Routes: [] });
    expect(router.ok).to.equal(false);
    expect(router.ok === false && router.error).to.match(/protocol "tcp" does not support routing/);
    expect(h.st.config.get('service-router', 'web')).to.equal(undefined);

    h.apply({ type: 'config-set', entry: normalizeConfigEntry(httpDefaults('web')), at: 0 });
    h.apply({
      type: 'config-set',
      entry: normalizeConfigEntry({ Kind: 'service-router', Name: 'web', Routes: [] }),
      at: 0,
    });
    const before = h.st.serialize().toString();
    const indexBefore = h.st.indexes.get(K.config('service-defaults', 'web'));
    // Turning web back to tcp, or deleting its defaults, would break the router.
    const back = h.set({ Kind: 'service-defaults', Name: 'web', Protocol: 'tcp' });
    expect(back.ok === false && back.error).to.match(
      /would invalidate service-router "web": protocol "tcp" does not support routing/,
    );
    const del = h.try({ type: 'config-delete', kind: 'service-defaults', name: 'web' });
    expect(del.ok === false && del.status).to.equal(400);
    expect(del.ok === false && del.error).to.match(/cannot delete service-defaults "web"/);
    // validate() says the same without applying.
    expect(
      h.st.validate({ type: 'config-delete', kind: 'service-defaults', name: 'web' })?.ok,
    ).to.equal(false);
    expect(h.st.config.get('service-defaults', 'web')).to.include({ Protocol: 'http' });
    expect(h.st.indexes.get(K.config('service-defaults', 'web'))).to.equal(indexBefore);
    // lastIndex moves with every applied command; the tables do not.
    const after = JSON.parse(h.st.serialize().toString()) as Record<string, unknown>;
    const was = JSON.parse(before) as Record<string, unknown>;
    expect(after.config).to.deep.equal(was.config);
    expect(after.indexes).to.deep.equal(was.indexes);
  });

  it('refuses L7 intentions on a tcp destination', () => {
    const h = new Harness();
    const r = h.upsert('web', 'api', {
      Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }],
    });
    expect(r.ok).to.equal(false);
    expect(r.ok === false && r.error).to.match(/L7 permissions need an HTTP-family protocol/);
    expect(h.st.config.intentions()).to.have.length(0);
  });

  it('names watch keys so that only related writes move an index', () => {
    const h = new Harness();
    h.set(httpDefaults('web'));
    h.upsert('web', 'api', { Action: 'allow' });
    expect(h.st.indexes.get(K.intentions)).to.equal(2);
    expect(h.st.indexes.get(K.configKind('service-intentions'))).to.equal(2);
    h.set(httpDefaults('other'));
    expect(h.st.indexes.get(K.intentions)).to.equal(2);
    expect(h.st.indexes.get(K.config('service-defaults', 'web'))).to.equal(1);
    expect(h.st.indexes.get(K.configKind('service-defaults'))).to.equal(3);
  });

  it('upserts, creates, moves and deletes intentions as sources of one entry per destination', () => {
    const h = new Harness();
    expect(h.upsert('web', 'api', { Action: 'allow' }).ok).to.equal(true);
    expect(h.upsert('*', 'api', { Action: 'deny', Description: 'default' }).ok).to.equal(true);
    const entry = h.st.config.intentionsEntry('api')!;
    expect(entry.Sources.map((s) => s.Name)).to.deep.equal(['web', '*']);
    const created = entry.Sources[0]!.LegacyCreateTime;
    // Replacing keeps the creation time and the position.
    h.upsert('web', 'api', { Action: 'deny' });
    const web = h.st.config.intentionsEntry('api')!.Sources[0]!;
    expect(web).to.include({ Name: 'web', Action: 'deny', LegacyCreateTime: created });
    expect(web.LegacyUpdateTime).to.not.equal(created);

    // Legacy create: refused when the pair exists.
    const dup = h.try({
      type: 'config-intention-set',
      destination: 'api',
      source: { Name: 'web', Action: 'allow', Type: 'consul' },
      create: true,
      at: 0,
    });
    expect(dup).to.deep.include({ ok: false, status: 409 });
    const id = '11111111-2222-3333-4444-555555555555';
    h.apply({
      type: 'config-intention-set',
      destination: 'api',
      source: { Name: 'db', Action: 'allow', Type: 'consul', LegacyID: id },
      create: true,
      at: 5,
    });
    expect(h.st.config.intentionById(id)).to.include({ SourceName: 'db', DestinationName: 'api' });
    // Replacing by ID may move it to another destination; the emptied pair goes away.
    h.apply({
      type: 'config-intention-set',
      destination: 'db',
      source: { Name: 'web', Action: 'deny', Type: 'consul' },
      create: false,
      replaceId: id,
      at: 6,
    });
    const moved = h.st.config.intentionById(id)!;
    expect(moved).to.include({ SourceName: 'web', DestinationName: 'db' });
    expect(moved.source.LegacyCreateTime).to.equal(new Date(5).toISOString());
    expect(h.st.config.intentionsEntry('api')!.Sources.map((s) => s.Name)).to.deep.equal([
      'web',
      '*',
    ]);
    // Deleting the last source deletes the entry.
    h.apply({ type: 'config-intention-delete', id });
    expect(h.st.config.intentionsEntry('db')).to.equal(undefined);
    expect(h.try({ type: 'config-intention-delete', id })).to.deep.include({
      ok: false,
      status: 404,
    });
    expect(
      h.apply({ type: 'config-intention-delete', destination: 'api', source: 'nobody' }),
    ).to.equal(false);
  });

  it('keeps IDs and times when the entry is rewritten through /v1/config', () => {
    const h = new Harness();
    const id = 'aaaaaaaa-2222-3333-4444-555555555555';
    h.apply({
      type: 'config-intention-set',
      destination: 'api',
      source: { Name: 'web', Action: 'allow', Type: 'consul', LegacyID: id },
      create: true,
      at: 1000,
    });
    h.set({
      Kind: 'service-intentions',
      Name: 'api',
      Sources: [
        { Name: 'web', Action: 'allow', LegacyCreateTime: '1999-01-01T00:00:00Z' },
        { Name: 'db', Action: 'deny' },
      ],
    });
    const [web, db] = h.st.config.intentionsEntry('api')!.Sources;
    expect(web).to.include({
      LegacyID: id,
      LegacyCreateTime: new Date(1000).toISOString(),
      LegacyUpdateTime: new Date(1000).toISOString(),
    });
    expect(db!.LegacyCreateTime).to.equal(new Date(h.at).toISOString());
    // An ID owned by another pair cannot be claimed.
    const steal = h.set({
      Kind: 'service-intentions',
      Name: 'other',
      Sources: [{ Name: 'x', Action: 'allow', LegacyID: id }],
    });
    expect(steal.ok === false && steal.error).to.match(/already belongs to intention web => api/);
  });

  it('lists intentions in evaluation order and shows Precedence on entries', () => {
    const h = new Harness();
    h.upsert('*', '*', { Action: 'deny' });
    h.upsert('web', '*', { Action: 'allow' });
    h.upsert('*', 'api', { Action: 'allow' });
    h.upsert('web', 'api', { Action: 'deny' });
    h.upsert('a', 'api', { Action: 'deny' });
    const order = CQ.intentionList(h.st).value.map(
      (i) => `${i.SourceName}>${i.DestinationName}:${i.Precedence}`,
    );
    expect(order).to.deep.equal(['a>api:9', 'web>api:9', '*>api:8', 'web>*:6', '*>*:5']);
    const entry = CQ.configGet(h.st, 'service-intentions', 'api').value!;
    expect(
      entry.Kind === 'service-intentions' && entry.Sources.map((s) => s.Precedence),
    ).to.deep.equal([8, 9, 9]);
    const match = CQ.intentionMatch(h.st, 'source', ['web']).value.web!.map(
      (i) => `${i.SourceName}>${i.DestinationName}`,
    );
    expect(match).to.deep.equal(['web>api', '*>api', 'web>*', '*>*']);
  });

  it('decides over the at most four candidate intentions exactly as over all of them', async () => {
    const h = new Harness();
    h.set({ Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } });
    const names = ['a', 'b', 'c', 'd', '*'];
    // A fixed mix of intentions over five names, wildcards included: none, allow, deny, L7.
    for (const [i, src] of names.entries()) {
      for (const [j, dst] of names.entries()) {
        const roll = (i * 7 + j * 3 + i * j) % 4;
        if (roll === 0) continue;
        h.upsert(
          src,
          dst,
          roll === 3
            ? { Permissions: [{ Action: 'allow', HTTP: { PathPrefix: `/${src}${dst}` } }] }
            : { Action: roll === 1 ? 'allow' : 'deny' },
        );
      }
    }
    const client = createClient({ addresses: ['127.0.0.1:1'], clock: systemClock });
    const cache = new IntentionCache({
      client,
      clock: systemClock,
      log: { info() {}, warn() {}, error() {} },
    });
    // Once without a * => * intention (so some requests match nothing), once with it.
    for (const phase of ['without', 'with']) {
      if (phase === 'with') h.upsert('*', '*', { Action: 'allow' });
      const all = h.st.config.intentions();
      expect(all.length).to.be.greaterThan(10);
      cache.update({ DefaultAllow: false, Index: 1, Intentions: CQ.intentionList(h.st).value });
      compare(all);
    }
    await client.close();

    function compare(all: ReturnType<typeof h.st.config.intentions>): void {
      const concrete = ['a', 'b', 'c', 'd', 'e'];
      for (const src of concrete) {
        for (const dst of concrete) {
          for (const http of [undefined, { path: `/${src}${dst}/x`, method: 'GET', headers: {} }]) {
            const req: Request = { source: src, destination: dst, ...(http ? { http } : {}) };
            for (const dflt of [true, false]) {
              const want = decide(all, req, dflt);
              const got = decide(h.st.config.candidates(src, dst), req, dflt);
              expect(got, `${src} => ${dst}`).to.deep.equal(want);
            }
            const fromCache = cache.decide(req);
            const want = decide(all, req, false);
            expect(fromCache.allowed, `cache ${src} => ${dst}`).to.equal(want.allowed);
            expect(fromCache.reason).to.equal(want.reason);
          }
        }
      }
    }
  });

  it('serializes and restores config entries, in slices too', async () => {
    const h = new Harness();
    h.set(httpDefaults('web'));
    h.set({ Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } });
    h.upsert('web', 'api', { Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/x' } }] });
    const copy = StateStore.deserialize(h.st.serialize());
    expect(copy.config.toJSON()).to.deep.equal(h.st.config.toJSON());
    expect(copy.config.intentions().map((r) => r.ID)).to.deep.equal(['web => api']);
    expect(copy.indexes.get(K.intentions)).to.equal(3);
    const sliced = await serializeCapture(h.st.capture(), async () => {}, 2);
    expect(sliced.equals(h.st.serialize())).to.equal(true);
  });

  it('loads a snapshot written before config entries existed', () => {
    const h = new Harness();
    h.apply({ type: 'kv-set', key: 'k', value: null, flags: 0, at: 0 });
    const old = JSON.parse(h.st.serialize().toString()) as Record<string, unknown>;
    delete old.config;
    const st = StateStore.deserialize(Buffer.from(JSON.stringify(old)));
    expect(st.config.list('service-defaults')).to.deep.equal([]);
    expect(st.config.intentions()).to.deep.equal([]);
    expect(st.kv.get('k')).to.not.equal(undefined);
  });
});
