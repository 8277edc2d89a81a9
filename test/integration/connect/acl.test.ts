/**
 * ACLs on the config-entry and intention endpoints (server with default policy deny): each row
 * is a token, a request, and the status it must get. Tokens have rights on the right
 * destination, on the wrong one, or read where write is needed. Every row also checks the
 * audit log: a refusal writes exactly one `acl.denied` line naming the token's accessor, an
 * allowed request none, and no line ever holds a secret. CA operations write one line each.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { agentSpiffeId } from '../../../src/policy/index.js';
import { createCsr } from '../../../src/pki/index.js';
import type { Intention } from '../../../src/api/index.js';
import { startTestServer, type TestServer } from '../../helpers/in-process-server.js';
import { caller, type Call } from './http.js';

type Who =
  'anonymous' | 'webRead' | 'webWrite' | 'webIxnWrite' | 'apiIxnWrite' | 'allRead' | 'operator';

const POLICIES: Record<Exclude<Who, 'anonymous'>, string> = {
  webRead: 'service "web" { policy = "read" }',
  webWrite: 'service "web" { policy = "write" }',
  webIxnWrite: 'service "web" { policy = "read"\n intentions = "write" }',
  apiIxnWrite: 'service "api" { policy = "read"\n intentions = "write" }',
  allRead: 'service_prefix "" { policy = "read" }',
  operator: 'operator = "write"',
};

describe('ACLs on config entries and intentions (default policy deny)', function () {
  let t: TestServer;
  let mgmt = '';
  const tokens = {} as Record<Who, string>;
  const accessors = {} as Record<Who, string>;
  /** Every audit line the server wrote, as the pino sink received it. */
  const audit: Record<string, unknown>[] = [];
  const sink = { info: (o: object): void => void audit.push({ ...o }) };
  const call: Call = caller(() => t.url);
  const as = (who: Who, method: string, path: string, body?: unknown) =>
    call(method, path, { token: tokens[who], body });
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await call(method, path, { token: mgmt, body });
    expect(r.status, `${method} ${path}: ${r.text}`).to.equal(200);
    return r.body;
  };

  before(async () => {
    t = await startTestServer({ aclDefaultPolicy: 'deny', audit: sink });
    mgmt = ((await call('PUT', '/v1/acl/bootstrap')).body as { SecretID: string }).SecretID;
    tokens.anonymous = '';
    accessors.anonymous = '00000000-0000-0000-0000-000000000002';
    for (const [name, rules] of Object.entries(POLICIES)) {
      await admin('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      const tok = (await admin('PUT', '/v1/acl/token', {
        Description: name,
        Policies: [{ Name: name }],
      })) as { SecretID: string; AccessorID: string };
      tokens[name as Who] = tok.SecretID;
      accessors[name as Who] = tok.AccessorID;
    }
    await admin('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'web' });
    await admin('PUT', '/v1/config', { Kind: 'service-defaults', Name: 'api' });
    await admin('PUT', '/v1/connect/intentions/exact?source=x&destination=web', {
      Action: 'allow',
    });
    await admin('PUT', '/v1/connect/intentions/exact?source=x&destination=api', {
      Action: 'deny',
    });
  });
  after(() => t.close());

  const rows: [Who, string, string, unknown, number][] = [
    // service-defaults: service:write to write, service:read to read.
    ['webWrite', 'PUT', '/v1/config', { Kind: 'service-defaults', Name: 'web' }, 200],
    ['webRead', 'PUT', '/v1/config', { Kind: 'service-defaults', Name: 'web' }, 403],
    ['webWrite', 'PUT', '/v1/config', { Kind: 'service-defaults', Name: 'api' }, 403],
    ['anonymous', 'PUT', '/v1/config', { Kind: 'service-defaults', Name: 'web' }, 403],
    ['webRead', 'GET', '/v1/config/service-defaults/web', undefined, 200],
    ['webRead', 'GET', '/v1/config/service-defaults/api', undefined, 403],
    ['anonymous', 'GET', '/v1/config/service-defaults/web', undefined, 403],
    ['webRead', 'DELETE', '/v1/config/service-defaults/web', undefined, 403],
    ['apiIxnWrite', 'DELETE', '/v1/config/service-defaults/web', undefined, 403],
    // Router, splitter, resolver: the same service rights.
    [
      'webWrite',
      'PUT',
      '/v1/config',
      { Kind: 'service-resolver', Name: 'web', ConnectTimeout: '3s' },
      200,
    ],
    [
      'webWrite',
      'PUT',
      '/v1/config',
      { Kind: 'service-resolver', Name: 'api', ConnectTimeout: '3s' },
      403,
    ],
    ['webRead', 'GET', '/v1/config/service-resolver/web', undefined, 200],
    ['apiIxnWrite', 'GET', '/v1/config/service-resolver/web', undefined, 403],
    // proxy-defaults: operator:write to write, nothing to read.
    [
      'operator',
      'PUT',
      '/v1/config',
      { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'tcp' } },
      200,
    ],
    ['webWrite', 'PUT', '/v1/config', { Kind: 'proxy-defaults', Name: 'global' }, 403],
    ['anonymous', 'GET', '/v1/config/proxy-defaults/global', undefined, 200],
    ['anonymous', 'GET', '/v1/config/proxy-defaults', undefined, 200],
    ['webWrite', 'DELETE', '/v1/config/proxy-defaults/global', undefined, 403],
    // service-intentions entries: intention write / read on the destination.
    [
      'webIxnWrite',
      'PUT',
      '/v1/config',
      { Kind: 'service-intentions', Name: 'web', Sources: [{ Name: 'x', Action: 'allow' }] },
      200,
    ],
    [
      'webWrite',
      'PUT',
      '/v1/config',
      { Kind: 'service-intentions', Name: 'web', Sources: [{ Name: 'x', Action: 'allow' }] },
      403,
    ],
    [
      'apiIxnWrite',
      'PUT',
      '/v1/config',
      { Kind: 'service-intentions', Name: 'web', Sources: [{ Name: 'x', Action: 'allow' }] },
      403,
    ],
    ['webRead', 'GET', '/v1/config/service-intentions/web', undefined, 200],
    ['apiIxnWrite', 'GET', '/v1/config/service-intentions/web', undefined, 403],
    // Intentions: write needs intention write on the destination (service write is not enough).
    [
      'webIxnWrite',
      'PUT',
      '/v1/connect/intentions/exact?source=y&destination=web',
      { Action: 'allow' },
      200,
    ],
    [
      'apiIxnWrite',
      'PUT',
      '/v1/connect/intentions/exact?source=y&destination=web',
      { Action: 'allow' },
      403,
    ],
    [
      'webWrite',
      'PUT',
      '/v1/connect/intentions/exact?source=y&destination=web',
      { Action: 'allow' },
      403,
    ],
    [
      'anonymous',
      'PUT',
      '/v1/connect/intentions/exact?source=y&destination=web',
      { Action: 'allow' },
      403,
    ],
    ['webRead', 'GET', '/v1/connect/intentions/exact?source=x&destination=web', undefined, 200],
    ['apiIxnWrite', 'GET', '/v1/connect/intentions/exact?source=x&destination=web', undefined, 403],
    ['webRead', 'DELETE', '/v1/connect/intentions/exact?source=y&destination=web', undefined, 403],
    [
      'apiIxnWrite',
      'POST',
      '/v1/connect/intentions',
      { SourceName: 'z', DestinationName: 'api', Action: 'allow' },
      200,
    ],
    [
      'webIxnWrite',
      'POST',
      '/v1/connect/intentions',
      { SourceName: 'z', DestinationName: 'api', Action: 'allow' },
      403,
    ],
    // Checks need intention read on the destination.
    ['webRead', 'GET', '/v1/connect/intentions/check?source=x&destination=web', undefined, 200],
    ['webRead', 'GET', '/v1/connect/intentions/check?source=x&destination=api', undefined, 403],
    ['anonymous', 'GET', '/v1/connect/intentions/check?source=x&destination=web', undefined, 403],
    // The agents' state needs every intention readable.
    ['allRead', 'GET', '/v1/internal/trellis/connect/intention-state', undefined, 200],
    ['webRead', 'GET', '/v1/internal/trellis/connect/intention-state', undefined, 403],
    ['anonymous', 'GET', '/v1/internal/trellis/connect/intention-state', undefined, 403],
  ];

  for (const [who, method, path, body, status] of rows) {
    const entry = body as { Kind?: string; Name?: string } | undefined;
    const what = entry?.Kind ? ` ${entry.Kind}/${entry.Name}` : '';
    it(`${who}: ${method} ${path}${what} -> ${status}`, async () => {
      const before = audit.length;
      const r = await as(who, method, path, body);
      expect(r.status, r.text).to.equal(status);
      if (status === 403 && who !== 'anonymous')
        expect(r.text).to.match(/^Permission denied: token with AccessorID '[0-9a-f-]+' lacks/);
      const lines = audit.slice(before);
      if (status !== 403) {
        expect(lines, 'an allowed request writes no audit line').to.deep.equal([]);
        return;
      }
      expect(lines, 'one audit line per refusal').to.have.length(1);
      const permission = /lacks permission '([^']+)'/.exec(r.text)?.[1];
      expect(lines[0]).to.deep.include({
        audit: 'acl.denied',
        accessor: accessors[who],
        permission,
        remote: '127.0.0.1',
        method,
        path: path.split('?')[0],
      });
      expect(JSON.stringify(lines[0])).to.not.include(tokens[who] || 'no-secret');
    });
  }

  it('lists show only what the token may read, and say so', async () => {
    const sd = await as('webRead', 'GET', '/v1/config/service-defaults');
    expect((sd.body as { Name: string }[]).map((e) => e.Name)).to.deep.equal(['web']);
    expect(sd.headers['x-consul-results-filtered-by-acls']).to.equal('true');
    const all = await as('allRead', 'GET', '/v1/config/service-defaults');
    expect((all.body as { Name: string }[]).map((e) => e.Name)).to.deep.equal(['api', 'web']);
    expect(all.headers['x-consul-results-filtered-by-acls']).to.equal(undefined);
    expect((await as('anonymous', 'GET', '/v1/config/service-defaults')).body).to.deep.equal([]);

    const ixns = await as('webRead', 'GET', '/v1/connect/intentions');
    const dests = (ixns.body as Intention[]).map((i) => i.DestinationName);
    expect(dests.length).to.be.greaterThan(0);
    expect(new Set(dests)).to.deep.equal(new Set(['web']));
    expect(ixns.headers['x-consul-results-filtered-by-acls']).to.equal('true');

    const match = await as('webRead', 'GET', '/v1/connect/intentions/match?by=source&name=x');
    expect(
      (match.body as Record<string, Intention[]>).x!.map((i) => i.DestinationName),
    ).to.deep.equal(['web']);
  });

  it('moving an intention by ID needs write on both destinations', async () => {
    const { ID } = (await admin('POST', '/v1/connect/intentions', {
      SourceName: 'mover',
      DestinationName: 'api',
      Action: 'allow',
    })) as { ID: string };
    const move = { SourceName: 'mover', DestinationName: 'web', Action: 'allow' };
    expect((await as('apiIxnWrite', 'PUT', `/v1/connect/intentions/${ID}`, move)).status).to.equal(
      403,
    );
    expect((await as('webIxnWrite', 'PUT', `/v1/connect/intentions/${ID}`, move)).status).to.equal(
      403,
    );
    expect((await as('webIxnWrite', 'DELETE', `/v1/connect/intentions/${ID}`)).status).to.equal(
      403,
    );
    expect((await as('webRead', 'GET', `/v1/connect/intentions/${ID}`)).status).to.equal(403);
    expect((await as('apiIxnWrite', 'GET', `/v1/connect/intentions/${ID}`)).status).to.equal(200);
    await admin('PUT', `/v1/connect/intentions/${ID}`, move);
    expect((await as('webRead', 'GET', `/v1/connect/intentions/${ID}`)).status).to.equal(200);
    expect((await as('webIxnWrite', 'DELETE', `/v1/connect/intentions/${ID}`)).status).to.equal(
      200,
    );
  });

  it('CA operations write one audit line each, with the caller; a refused one only its refusal', async () => {
    const td = ((await admin('GET', '/v1/connect/ca/roots')) as { TrustDomain: string })
      .TrustDomain;
    const before = audit.length;
    // Refused: a rotation by a token without operator:write.
    expect((await as('webWrite', 'PUT', '/v1/internal/trellis/ca/rotate')).status).to.equal(403);
    expect(audit.slice(before).map((l) => [l.audit, l.permission])).to.deep.equal([
      ['acl.denied', 'operator:write'],
    ]);
    // Done: a rotation, a configuration change, an agent certificate.
    const b2 = audit.length;
    const rotated = (await as('operator', 'PUT', '/v1/internal/trellis/ca/rotate')).body as {
      ActiveRootID: string;
    };
    const cfg = await as('operator', 'PUT', '/v1/connect/ca/configuration', {
      Provider: 'consul',
      Config: { LeafCertTTL: '48h' },
    });
    expect(cfg.status, cfg.text).to.equal(200);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const signed = await call('PUT', '/v1/internal/trellis/connect/sign-agent', {
      token: mgmt,
      body: { Node: 'n9', CSR: createCsr(privateKey, agentSpiffeId(td, 'dc1', 'n9')) },
    });
    expect(signed.status, signed.text).to.equal(200);
    // A CSR for another identity is refused by the CA: one line, outcome failed.
    const bad = await call('PUT', '/v1/internal/trellis/connect/sign-agent', {
      token: mgmt,
      body: { Node: 'n9', CSR: createCsr(privateKey, agentSpiffeId(td, 'dc1', 'other')) },
    });
    expect(bad.status).to.be.within(400, 499);
    const lines = audit.slice(b2);
    expect(lines.map((l) => [l.audit, l.outcome])).to.deep.equal([
      ['ca.rotate', 'ok'],
      ['ca.config', 'ok'],
      ['ca.sign', 'ok'],
      ['ca.sign', 'failed'],
    ]);
    expect(lines[0]).to.deep.include({
      accessor: accessors.operator,
      remote: '127.0.0.1',
      to: rotated.ActiveRootID,
    });
    expect(lines[1]).to.deep.include({ accessor: accessors.operator, changed: ['LeafCertTTL'] });
    expect(lines[2]).to.deep.include({ kind: 'agent', node: 'n9', remote: '127.0.0.1' });
    expect(lines[2]).to.have.property('serial').that.is.a('string');
    const all = JSON.stringify(audit);
    for (const secret of [mgmt, ...Object.values(tokens).filter(Boolean)])
      expect(all).to.not.include(secret);
  });
});
