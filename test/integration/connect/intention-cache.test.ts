/**
 * The agent's intention cache against an in-process server: it follows intention writes with
 * a blocking query, answers authorize and decide from memory with Consul's reasons, keeps its
 * last state when the server goes away, and denies everything (saying why) when the server
 * refuses its token.
 */
import { expect } from 'chai';
import {
  IntentionCache,
  type IntentionSnapshot,
} from '../../../src/agent/connect/intention-cache.js';
import { createClient, type TrellisClient } from '../../../src/client/index.js';
import { systemClock } from '../../../src/core/index.js';
import { agentSpiffeId, serviceSpiffeId } from '../../../src/policy/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { eventually, removeDir } from '../../helpers/trellis-process.js';
import { caller, okCaller } from './http.js';

const quiet = { info() {}, warn() {}, error() {} };
const TD = '11111111-2222-3333-4444-555555555555.consul';
const uri = (svc: string): string => serviceSpiffeId(TD, 'dc1', svc);

describe('agent intention cache', function () {
  let t: TestServer;
  let mgmt = '';
  const clients: TrellisClient[] = [];
  const caches: IntentionCache[] = [];
  const call = caller(() => t.url);
  const ok = okCaller(call, () => mgmt);

  function cache(token: string): IntentionCache {
    const client = createClient({ addresses: [t.server.address], token, clock: systemClock });
    clients.push(client);
    const c = new IntentionCache({ client, clock: systemClock, log: quiet, maxBackoffMs: 200 });
    caches.push(c);
    return c;
  }

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'deny' });
    mgmt = ((await call('PUT', '/v1/acl/bootstrap')).body as { SecretID: string }).SecretID;
  });
  after(async () => {
    for (const c of caches) await c.stop();
    for (const c of clients) await c.close();
    // The last test closed the server already; this removes its data dir.
    await t.close().catch(() => removeDir(t.dir));
  });

  it('follows intention writes and answers from memory with Consul reasons', async () => {
    const c = cache(mgmt);
    const seen: IntentionSnapshot[] = [];
    c.onChange((s) => seen.push(s));
    expect(c.decide({ source: 'web', destination: 'api' })).to.deep.equal({
      allowed: false,
      reason: 'intentions not loaded from the servers yet',
    });
    c.start();
    expect(await c.whenReady(10_000)).to.equal(true);
    expect(c.defaultAllow).to.equal(false);
    expect(c.authorize('api', uri('web'))).to.deep.equal({
      Authorized: false,
      Reason: 'Default behavior configured by ACLs',
    });

    await ok('PUT', '/v1/connect/intentions/exact?source=web&destination=api', {
      Action: 'allow',
    });
    await eventually(async () => c.authorize('api', uri('web')).Authorized);
    expect(c.authorize('api', uri('web')).Reason).to.equal(
      'Matched L4 intention: web => api (allow)',
    );
    expect(seen.at(-1)!.intentions.map((i) => i.SourceName)).to.deep.equal(['web']);

    await ok('PUT', '/v1/connect/intentions/exact?source=*&destination=api', { Action: 'deny' });
    await eventually(async () => c.intentions.length === 2);
    expect(c.authorize('api', uri('db'))).to.deep.equal({
      Authorized: false,
      Reason: 'Matched L4 intention: * => api (deny)',
    });
    expect(c.authorize('api', uri('web')).Authorized).to.equal(true);

    // An L7 intention: connections are refused, HTTP requests decided by the permissions.
    await ok('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'shop', Protocol: 'http' });
    await ok('PUT', '/v1/connect/intentions/exact?source=web&destination=shop', {
      Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/cart' } }],
    });
    await eventually(async () => c.intentions.length === 3);
    expect(c.authorize('shop', uri('web'))).to.deep.equal({
      Authorized: false,
      Reason:
        'Matched L7 intention: web => shop (1 permission); L7 permissions deny plain connections',
    });
    const http = (path: string) => ({ path, method: 'GET', headers: {} });
    expect(c.decide({ source: 'web', destination: 'shop', http: http('/cart/1') })).to.deep.include(
      { allowed: true, permission: 0 },
    );
    expect(c.decide({ source: 'web', destination: 'shop', http: http('/admin') }).allowed).to.equal(
      false,
    );
  });

  it('refuses certificates that do not name a service', async () => {
    const c = cache(mgmt);
    c.start();
    await c.whenReady(10_000);
    for (const bad of [
      agentSpiffeId(TD, 'dc1', 'node-1'),
      'spiffe://x.consul/ns/default/dc/dc1/svc/',
      'spiffe://x.consul/ns/default/dc/dc1/svc/a/../b',
      'https://example.com/',
      '',
    ]) {
      const r = c.authorize('api', bad);
      expect(r.Authorized, bad).to.equal(false);
      expect(r.Reason).to.match(/ClientCertURI is not a valid service identity/);
    }
    expect(c.authorize('api', serviceSpiffeId(TD, 'dc1', 'web', 'team-a'))).to.deep.equal({
      Authorized: false,
      Reason: 'ClientCertURI names namespace "team-a"; only "default" exists',
    });
  });

  it('denies everything, saying why, when the servers refuse its token', async () => {
    await ok('PUT', '/v1/acl/policy', {
      Name: 'api-read',
      Rules: 'service "api" { policy = "read" }',
    });
    const tok = (await ok('PUT', '/v1/acl/token', { Policies: [{ Name: 'api-read' }] })) as {
      SecretID: string;
    };
    const c = cache(tok.SecretID);
    c.start();
    expect(await c.whenReady(1_000)).to.equal(false);
    await eventually(async () =>
      /^intentions unavailable: Permission denied/.test(
        c.decide({ source: 'web', destination: 'api' }).reason,
      ),
    );
    expect(c.authorize('api', uri('web')).Authorized).to.equal(false);

    // Granting read on every intention lets it load.
    await ok('PUT', '/v1/acl/policy', {
      Name: 'all-read',
      Rules: 'service_prefix "" { policy = "read" }',
    });
    const tokens = (await ok('GET', '/v1/acl/tokens')) as {
      AccessorID: string;
      Policies: { Name: string }[];
    }[];
    const row = tokens.find((x) => x.Policies?.some((p) => p.Name === 'api-read'))!;
    await ok('PUT', `/v1/acl/token/${row.AccessorID}`, {
      Policies: [{ Name: 'api-read' }, { Name: 'all-read' }],
    });
    expect(await c.whenReady(10_000)).to.equal(true);
    expect(c.authorize('api', uri('web'))).to.deep.equal({
      Authorized: true,
      Reason: 'Matched L4 intention: web => api (allow)',
    });
  });

  it('keeps answering from its last state when the server is gone', async () => {
    const c = cache(mgmt);
    c.start();
    await c.whenReady(10_000);
    const before = c.authorize('api', uri('web'));
    expect(before.Authorized).to.equal(true);
    const index = c.index;
    await t.server.close();
    // Give the loop time to notice and retry a few times.
    await new Promise((r) => setTimeout(r, 500));
    expect(c.ready).to.equal(true);
    expect(c.index).to.equal(index);
    expect(c.authorize('api', uri('web'))).to.deep.equal(before);
    expect(c.authorize('api', uri('db')).Authorized).to.equal(false);
  });
});
