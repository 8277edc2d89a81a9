import { expect } from 'chai';
import {
  agentSpiffeId,
  checkPeerServiceId,
  decide,
  parseSpiffeId,
  precedence,
  serviceSpiffeId,
  sortIntentions,
  validateRule,
  type IntentionRule,
} from '../../../src/policy/index.js';

const TD = '11111111-2222-3333-4444-555555555555.consul';

describe('policy: SPIFFE ids', () => {
  it('formats and parses service and agent identities', () => {
    const svc = serviceSpiffeId(TD, 'dc1', 'web');
    expect(svc).to.equal(`spiffe://${TD}/ns/default/dc/dc1/svc/web`);
    expect(parseSpiffeId(svc)).to.deep.equal({
      kind: 'service',
      trustDomain: TD,
      namespace: 'default',
      datacenter: 'dc1',
      service: 'web',
    });
    expect(parseSpiffeId(agentSpiffeId(TD, 'dc1', 'host-1'))).to.deep.equal({
      kind: 'agent',
      trustDomain: TD,
      datacenter: 'dc1',
      node: 'host-1',
    });
  });

  it('refuses every other spelling', () => {
    for (const bad of [
      `spiffe://${TD}/ns/default/dc/dc1/svc/web/extra`,
      `spiffe://${TD}/ns/default/dc/dc1/svc/`,
      `spiffe://${TD}/ns/default/dc/dc1/svc/%77eb`,
      `spiffe://${TD}/ns/default/dc/dc1/svc/..`,
      `spiffe://${TD}//ns/default/dc/dc1/svc/web`,
      `SPIFFE://${TD}/ns/default/dc/dc1/svc/web`,
      `spiffe://${TD.toUpperCase()}/ns/default/dc/dc1/svc/web`,
      `spiffe://${TD}/ns/default/dc/dc1/svc/web?x=1`,
      `https://${TD}/ns/default/dc/dc1/svc/web`,
      `spiffe://${TD}/ns/default/dc/dc1/svc/${'a'.repeat(3000)}`,
    ]) {
      expect(parseSpiffeId(bad), bad.slice(0, 80)).to.equal(undefined);
    }
  });
});

describe('policy: intentions', () => {
  const rule = (src: string, dst: string, extra: Partial<IntentionRule>): IntentionRule => ({
    ID: `${src}->${dst}`,
    SourceName: src,
    DestinationName: dst,
    ...extra,
  });

  it('orders by Consul precedence, then destination and source names', () => {
    expect([
      precedence('a', 'b'),
      precedence('*', 'b'),
      precedence('a', '*'),
      precedence('*', '*'),
    ]).to.deep.equal([9, 8, 6, 5]);
    const sorted = sortIntentions([
      rule('*', '*', { Action: 'deny' }),
      rule('web', '*', { Action: 'allow' }),
      rule('*', 'api', { Action: 'deny' }),
      rule('web', 'api', { Action: 'allow' }),
      rule('admin', 'api', { Action: 'allow' }),
    ]);
    expect(sorted.map((r) => r.ID)).to.deep.equal([
      'admin->api',
      'web->api',
      '*->api',
      'web->*',
      '*->*',
    ]);
  });

  it('lets the most specific intention decide, and says which', () => {
    const rules = sortIntentions([
      rule('*', 'api', { Action: 'deny' }),
      rule('web', 'api', { Action: 'allow' }),
    ]);
    expect(decide(rules, { source: 'web', destination: 'api' }, false)).to.deep.include({
      allowed: true,
      reason: 'intention web => api (allow)',
    });
    expect(decide(rules, { source: 'batch', destination: 'api' }, true)).to.deep.include({
      allowed: false,
      reason: 'intention * => api (deny)',
    });
    expect(decide(rules, { source: 'web', destination: 'db' }, false)).to.deep.equal({
      allowed: false,
      reason: 'no intention matched: default policy (deny)',
    });
  });

  it('matches PathRegex and header Regex against the whole value, as Envoy does', () => {
    const r = rule('web', 'api', {
      Permissions: [
        { Action: 'allow', HTTP: { PathRegex: '/api' } },
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-env', Regex: 'prod' }] } },
      ],
    });
    const req = (path: string, headers: Record<string, string> = {}) => ({
      source: 'web',
      destination: 'api',
      http: { path, method: 'GET', headers },
    });
    expect(decide([r], req('/api'), false).allowed).to.equal(true);
    expect(decide([r], req('/x/api/y'), false).allowed).to.equal(false);
    expect(decide([r], req('/none', { 'x-env': 'prod' }), false).allowed).to.equal(true);
    expect(decide([r], req('/none', { 'x-env': 'preprod-eu' }), false).allowed).to.equal(false);
  });

  it('judges every value of a repeated header: any for a deny, all for an allow', () => {
    const req = (headers: Record<string, string | string[]>) => ({
      source: 'web',
      destination: 'api',
      http: { path: '/x', method: 'GET', headers },
    });
    const deny = rule('web', 'api', {
      Permissions: [{ Action: 'deny', HTTP: { Header: [{ Name: 'X-Check', Exact: 'bad' }] } }],
    });
    const denied = (h: Record<string, string | string[]>): boolean =>
      !decide([deny], req(h), true).allowed;
    expect(denied({ 'x-check': 'good' })).to.equal(false);
    expect(denied({ 'x-check': 'bad' })).to.equal(true);
    expect(denied({ 'x-check': ['good', 'bad'] })).to.equal(true);
    expect(denied({ 'x-check': ['bad', 'good'] })).to.equal(true);
    expect(denied({ 'x-check': 'good, bad' })).to.equal(true);
    expect(denied({ 'x-check': 'good,bad' })).to.equal(true);
    expect(denied({})).to.equal(false);
    const joined = rule('web', 'api', {
      Permissions: [
        { Action: 'deny', HTTP: { Header: [{ Name: 'x-check', Exact: 'good, bad' }] } },
      ],
    });
    expect(decide([joined], req({ 'x-check': ['good', 'bad'] }), true).allowed).to.equal(false);

    const allow = rule('web', 'api', {
      Permissions: [{ Action: 'allow', HTTP: { Header: [{ Name: 'x-check', Exact: 'good' }] } }],
    });
    const allowed = (h: Record<string, string | string[]>): boolean =>
      decide([allow], req(h), false).allowed;
    expect(allowed({ 'x-check': 'good' })).to.equal(true);
    expect(allowed({ 'x-check': ['good', 'bad'] })).to.equal(false);
    expect(allowed({ 'x-check': ['good', 'good'] })).to.equal(false); // joined: "good, good"
    expect(allowed({ 'x-check': 'good, bad' })).to.equal(false);
    expect(allowed({})).to.equal(false);
    // A plain allow is not held to comma elements (User-Agent has commas)...
    const ua = rule('web', 'api', {
      Permissions: [
        { Action: 'allow', HTTP: { Header: [{ Name: 'user-agent', Prefix: 'Mozilla/' }] } },
      ],
    });
    expect(
      decide([ua], req({ 'user-agent': 'Mozilla/5.0 (KHTML, like Gecko)' }), false).allowed,
    ).to.equal(true);
    // ...an inverted one is: "not bad" must hold for every element.
    const notBad = rule('web', 'api', {
      Permissions: [
        { Action: 'allow', HTTP: { Header: [{ Name: 'x-check', Exact: 'bad', Invert: true }] } },
      ],
    });
    expect(decide([notBad], req({ 'x-check': 'good' }), false).allowed).to.equal(true);
    expect(decide([notBad], req({ 'x-check': 'good, bad' }), false).allowed).to.equal(false);
    expect(decide([notBad], req({}), false).allowed).to.equal(true);
  });

  it('reads a rule on :authority as the host', () => {
    const r = rule('web', 'api', {
      Permissions: [
        { Action: 'deny', HTTP: { Header: [{ Name: ':authority', Exact: 'secret.svc' }] } },
      ],
    });
    const d = decide(
      [r],
      {
        source: 'web',
        destination: 'api',
        http: { path: '/', method: 'GET', headers: { host: 'secret.svc' } },
      },
      true,
    );
    expect(d.allowed).to.equal(false);
  });

  it('evaluates L7 permissions top to bottom and denies plain connections', () => {
    const l7 = rule('web', 'api', {
      Permissions: [
        { Action: 'deny', HTTP: { PathPrefix: '/admin' } },
        {
          Action: 'allow',
          HTTP: { PathRegex: '^/v[0-9]+/items/[0-9]+$', Methods: ['GET', 'head'] },
        },
        {
          Action: 'allow',
          HTTP: {
            PathExact: '/health',
            Header: [
              { Name: 'X-Probe', Exact: 'YES', IgnoreCase: true },
              { Name: 'X-Debug', Present: true, Invert: true },
            ],
          },
        },
      ],
    });
    expect(validateRule(l7)).to.equal(undefined);
    const http = (path: string, method = 'GET', headers: Record<string, string> = {}) => ({
      source: 'web',
      destination: 'api',
      http: { path, method, headers },
    });
    expect(decide([l7], http('/admin/x'), true)).to.deep.include({ allowed: false, permission: 0 });
    expect(decide([l7], http('/v2/items/7'), false)).to.deep.include({
      allowed: true,
      permission: 1,
    });
    expect(decide([l7], http('/v2/items/7', 'POST'), false).allowed).to.equal(false);
    expect(decide([l7], http('/health', 'GET', { 'x-probe': 'yes' }), false)).to.deep.include({
      allowed: true,
      permission: 2,
    });
    expect(
      decide([l7], http('/health', 'GET', { 'x-probe': 'yes', 'x-debug': '1' }), false).allowed,
    ).to.equal(false);
    const l4 = decide([l7], { source: 'web', destination: 'api' }, true);
    expect(l4.allowed).to.equal(false);
    expect(l4.reason).to.include('L7 permissions');
    expect(decide([l7], http('/other'), true).reason).to.include('none of its permissions did');
  });

  it('refuses rules that could not be enforced safely', () => {
    expect(validateRule(rule('a', 'b', {}))).to.include('required');
    expect(
      validateRule(rule('a', 'b', { Action: 'allow', Permissions: [{ Action: 'deny' }] })),
    ).to.include('mutually exclusive');
    expect(
      validateRule(
        rule('a', 'b', { Permissions: [{ Action: 'allow', HTTP: { PathRegex: '(a)\\1' } }] }),
      ),
    ).to.include('PathRegex');
    expect(
      validateRule(
        rule('a', 'b', {
          Permissions: [{ Action: 'allow', HTTP: { PathExact: '/a', PathPrefix: '/b' } }],
        }),
      ),
    ).to.include('at most one');
  });
});

describe('policy: peer service ids (checkPeerServiceId)', () => {
  const ok = (uri: string, tds: string[] = [TD]): boolean => checkPeerServiceId(uri, tds).ok;
  const svc = (td: string, name = 'web'): string => `spiffe://${td}/ns/default/dc/dc1/svc/${name}`;

  it('accepts exactly our trust domain, and a migration domain only when listed whole', () => {
    expect(checkPeerServiceId(svc(TD), [TD])).to.deep.equal({
      ok: true,
      id: {
        kind: 'service',
        trustDomain: TD,
        namespace: 'default',
        datacenter: 'dc1',
        service: 'web',
      },
    });
    expect(ok(svc('old.consul'), [TD, 'old.consul'])).to.equal(true);
    expect(ok(svc(TD, 'WEB'))).to.equal(true); // a different service, never "web"
    expect(checkPeerServiceId(svc(TD, 'WEB'), [TD])).to.have.nested.property('id.service', 'WEB');
  });

  const rows: [string, string, string[]?][] = [
    ['another trust domain', svc('other.consul')],
    ['ours as a suffix', svc(`evil-${TD}`)],
    ['ours as a prefix', svc(`${TD}.evil`)],
    ['a subdomain of ours', svc(`a.${TD}`)],
    ['a listed domain with a suffix', svc('evil-old.consul'), [TD, 'old.consul']],
    ['a listed domain with a prefix', svc('old.consul.evil'), [TD, 'old.consul']],
    ['upper-case trust domain', svc(TD.toUpperCase())],
    ['upper-case scheme', `SPIFFE://${TD}/ns/default/dc/dc1/svc/web`],
    ['upper-case keywords', `spiffe://${TD}/NS/default/DC/dc1/SVC/web`],
    ['fragment', `${svc(TD)}#x`],
    ['query', `${svc(TD)}?x=1`],
    ['empty query', `${svc(TD)}?`],
    ['extra segment', `${svc(TD)}/x`],
    ['missing dc segment', `spiffe://${TD}/ns/default/svc/web`],
    ['missing ns segment', `spiffe://${TD}/dc/dc1/svc/web`],
    ['percent-encoded name', svc(TD, '%77eb')],
    ['percent-encoded slash', `spiffe://${TD}/ns/default/dc/dc1/svc%2Fweb`],
    ['trailing slash', `${svc(TD)}/`],
    ['empty name', svc(TD, '')],
    ['dot name', svc(TD, '.')],
    ['other namespace', `spiffe://${TD}/ns/team/dc/dc1/svc/web`],
    ['userinfo', `spiffe://u@${TD}/ns/default/dc/dc1/svc/web`],
    ['port', `spiffe://${TD}:8443/ns/default/dc/dc1/svc/web`],
    ['agent id', agentSpiffeId(TD, 'dc1', 'n1')],
    ['trust domain only', `spiffe://${TD}`],
    ['whitespace', ` ${svc(TD)}`],
    ['no trust domains accepted', svc(TD), []],
  ];
  for (const [name, uri, tds] of rows) {
    it(`refuses ${name}`, () => {
      const r = checkPeerServiceId(uri, tds ?? [TD]);
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.why).to.be.a('string').and.not.equal('');
    });
  }
});
