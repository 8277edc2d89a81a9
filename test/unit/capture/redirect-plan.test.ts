import { expect } from 'chai';
import { buildRedirectPlan, type PlanContext } from '../../../src/agent/capture/redirect-plan.js';
import type { SidecarCapture, TransparentSettings } from '../../../src/agent/capture/types.js';
import type { RedirectPlan } from '../../../src/agent/nftables/ruleset.js';
import { renderRuleset } from '../../../src/agent/nftables/ruleset.js';

function settings(over: Partial<TransparentSettings> = {}): TransparentSettings {
  return {
    excludeInboundPorts: [],
    excludeOutboundPorts: [],
    excludeOutboundCidrs: [],
    excludeUids: [],
    redirectDns: false,
    ...over,
  };
}

/** web captures user "web" (uid 1001) and reaches api and db; api captures uid 1002. */
function web(over: Partial<TransparentSettings> = {}): SidecarCapture {
  return {
    sidecarId: 'web-sidecar-proxy',
    service: 'web',
    settings: settings({
      captureUser: 'web',
      excludeOutboundPorts: [5432],
      excludeOutboundCidrs: ['169.254.0.0/16'],
      excludeUids: [7],
      ...over,
    }),
    inbound: { port: 8080, toPort: 21000 },
    outbound: [
      {
        destination: 'api',
        toPort: 15001,
        vip: '240.0.0.1',
        addresses: [
          { address: '10.0.0.2', port: 9090 },
          { address: '10.0.0.3', port: 9090 },
        ],
      },
      { destination: 'db', toPort: 15002, addresses: [{ address: 'fd00::7', port: 5433 }] },
    ],
  };
}

function api(over: Partial<TransparentSettings> = {}): SidecarCapture {
  return {
    sidecarId: 'api-sidecar-proxy',
    service: 'api',
    settings: settings({
      captureUser: '1002',
      excludeInboundPorts: [9091],
      excludeOutboundPorts: [5432, 6379],
      excludeOutboundCidrs: ['10.9.0.0/16'],
      excludeUids: [7, 8],
      ...over,
    }),
    inbound: { port: 9091, toPort: 21001 },
    outbound: [{ destination: 'web', toPort: 15101, vip: '240.0.0.2', addresses: [] }],
  };
}

function ctx(over: Partial<PlanContext> = {}): PlanContext {
  return {
    proxyUid: 0,
    uids: new Map([
      ['web', 1001],
      ['1002', 1002],
    ]),
    agentPorts: [8500, 8600],
    ...over,
  };
}

function planOf(captures: SidecarCapture[], c: PlanContext = ctx()): RedirectPlan {
  const r = buildRedirectPlan(captures, c);
  if ('error' in r) throw new Error(`unexpected error: ${r.error}`);
  return r.plan;
}

function errorOf(captures: SidecarCapture[], c: PlanContext = ctx()): string {
  const r = buildRedirectPlan(captures, c);
  if (!('error' in r)) throw new Error('expected an error, got a plan');
  return r.error;
}

/** A deep copy with every list reversed, so input order differs everywhere. */
function reversed(c: SidecarCapture): SidecarCapture {
  return {
    ...c,
    settings: {
      ...c.settings,
      excludeInboundPorts: [...c.settings.excludeInboundPorts].reverse(),
      excludeOutboundPorts: [...c.settings.excludeOutboundPorts].reverse(),
      excludeOutboundCidrs: [...c.settings.excludeOutboundCidrs].reverse(),
      excludeUids: [...c.settings.excludeUids].reverse(),
    },
    outbound: [...c.outbound]
      .reverse()
      .map((d) => ({ ...d, addresses: [...d.addresses].reverse() })),
  };
}

describe('capture/buildRedirectPlan', () => {
  it('merges two sidecars, one captured user each, with their VIPs and real addresses', () => {
    const plan = planOf([web(), api()]);
    expect(plan.proxyUid).to.equal(0);
    const byUid = new Map(plan.outbound.map((o) => [o.uid, o]));
    expect([...byUid.keys()].sort()).to.deep.equal([1001, 1002]);
    expect(byUid.get(1001)!.targets).to.have.deep.members([
      { address: '10.0.0.2', port: 9090, toPort: 15001 },
      { address: '10.0.0.3', port: 9090, toPort: 15001 },
      { address: 'fd00::7', port: 5433, toPort: 15002 },
    ]);
    expect(byUid.get(1001)!.vips).to.deep.equal([{ address: '240.0.0.1', toPort: 15001 }]);
    expect(byUid.get(1002)!.targets).to.deep.equal([]);
    expect(byUid.get(1002)!.vips).to.deep.equal([{ address: '240.0.0.2', toPort: 15101 }]);
  });

  it("redirects each sidecar's app port inbound, except a port it excludes", () => {
    const plan = planOf([web(), api()]);
    // api excludes its own inbound port 9091: only web's is redirected. The exclusion is not
    // host-wide (another service's app port 9091 would still be captured).
    expect(plan.inbound).to.deep.equal([{ port: 8080, toPort: 21000 }]);
    expect(plan.exclude.inboundPorts).to.deep.equal([8500, 8600]);
  });

  it("scopes a sidecar's port and network exclusions to its own captured user", () => {
    const plan = planOf([web(), api()]);
    const byUid = new Map(plan.outbound.map((o) => [o.uid, o]));
    expect(byUid.get(1002)!.excludePorts).to.have.members([5432, 6379]);
    expect(byUid.get(1002)!.excludeCidrs).to.have.members(['10.9.0.0/16']);
    expect(plan.exclude.outboundPorts).to.deep.equal([]);
    expect(plan.exclude.outboundCidrs).to.deep.equal([]);
    expect(new Set(plan.exclude.uids)).to.deep.equal(new Set([7, 8]));
    const text = renderRuleset(plan);
    expect(text).to.include('meta skuid 1002 tcp dport { 5432, 6379 } return');
    expect(text).to.include('meta skuid 1002 ip daddr 10.9.0.0/16 return');
    expect(text).to.include('meta skuid { 7, 8 } return');
    // web keeps only its own exclusion; api's do not reach it.
    expect(text).to.include('meta skuid 1001 tcp dport 5432 return');
    expect(text).to.not.include('meta skuid 1001 tcp dport {');
    expect(text).to.not.match(/^\s*tcp dport \{ 5432/m);
  });

  it('refuses a uid that one sidecar excludes and another captures', () => {
    const r = buildRedirectPlan([web(), api({ excludeUids: [1001] })], ctx());
    expect(r)
      .to.have.property('error')
      .that.matches(/exclude_uids lists uid 1001/);
  });

  it('captures inbound only for a sidecar without a capture user', () => {
    const plan = planOf([api({ captureUser: undefined, excludeInboundPorts: [] })]);
    expect(plan.outbound).to.deep.equal([]);
    expect(plan.inbound).to.deep.equal([{ port: 9091, toPort: 21001 }]);
  });

  it('redirects DNS only when a sidecar asks for it and the agent serves DNS', () => {
    expect(planOf([web(), api()], ctx({ dnsPort: 8600 })).dns).to.equal(undefined);
    expect(planOf([web({ redirectDns: true }), api()]).dns).to.equal(undefined);
    expect(planOf([web(), api({ redirectDns: true })], ctx({ dnsPort: 8600 })).dns).to.deep.equal({
      port: 8600,
    });
    // A sidecar that captures no user has no queries to redirect.
    expect(
      planOf([api({ captureUser: undefined, redirectDns: true })], ctx({ dnsPort: 8600 })).dns,
    ).to.equal(undefined);
  });

  it('fails, naming the sidecar, for a capture user the host does not have', () => {
    const err = errorOf([web(), api({ captureUser: 'ghost' })]);
    expect(err).to.match(/^api-sidecar-proxy: /);
    expect(err).to.include('"ghost"');
    expect(err).to.include('no such user');
  });

  it('fails, naming the sidecar, when two sidecars capture the same user', () => {
    const err = errorOf([web(), api({ captureUser: 'web' })]);
    // Sidecars are merged in id order, so the second one (web-) is the one refused.
    expect(err).to.match(/^web-sidecar-proxy: /);
    expect(err).to.include('uid 1001');
    expect(err).to.include('already captured for api-sidecar-proxy');
  });

  it("fails, naming the sidecar, when the capture user is the agent's own", () => {
    const err = errorOf([web(), api()], ctx({ proxyUid: 1001 }));
    expect(err).to.match(/^web-sidecar-proxy: /);
    expect(err).to.include('uid 1001');
    expect(err).to.include("agent's own user");
  });

  it('renders the same ruleset whatever the order of sidecars, destinations and lists', () => {
    const a = renderRuleset(planOf([web({ redirectDns: true }), api()], ctx({ dnsPort: 8600 })));
    const b = renderRuleset(
      planOf(
        [reversed(api()), reversed(web({ redirectDns: true }))],
        ctx({ dnsPort: 8600, agentPorts: [8600, 8500] }),
      ),
    );
    expect(b).to.equal(a);
    expect(a).to.include('map out4_u1001');
    expect(a).to.include('map vip4_u1002');
    expect(a).to.include('udp dport 53 dnat ip to 127.0.0.1:8600');
  });

  it('selects by cgroup when the cgroup exists, and refuses one cgroup for two sidecars', () => {
    const byCgroup = web({ captureUser: undefined, captureCgroup: 'system.slice/web.service' });
    const plan = planOf([byCgroup], ctx({ cgroups: new Set(['system.slice/web.service']) }));
    expect(plan.outbound).to.have.length(1);
    expect(plan.outbound[0]!.cgroup).to.equal('system.slice/web.service');
    expect(plan.outbound[0]!.uid).to.equal(undefined);
    const text = renderRuleset(plan);
    expect(text).to.match(
      /socket cgroupv2 level 2 "system\.slice\/web\.service" meta l4proto tcp redirect to : ip daddr map @vip4_c[0-9a-f]{10}/,
    );
    // Not running (no cgroup): nothing to capture outbound, inbound still redirected.
    const idle = planOf([byCgroup], ctx({ cgroups: new Set() }));
    expect(idle.outbound).to.deep.equal([]);
    expect(idle.inbound).to.not.be.empty;
    const twice = buildRedirectPlan(
      [byCgroup, api({ captureUser: undefined, captureCgroup: 'system.slice/web.service' })],
      ctx({ cgroups: new Set(['system.slice/web.service']) }),
    );
    expect(twice)
      .to.have.property('error')
      .that.matches(/already captured for/);
  });
});
