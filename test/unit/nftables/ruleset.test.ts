import { expect } from 'chai';
import {
  removeFile,
  renderRuleset,
  validatePlan,
  wholeFile,
  type RedirectPlan,
} from '../../../src/agent/nftables/ruleset.js';
import { dryRun, lineDiff } from '../../../src/agent/nftables/nft.js';

function plan(): RedirectPlan {
  return {
    proxyUid: 990,
    outbound: [
      {
        uid: 1001,
        targets: [
          { address: '240.0.0.5', port: 80, toPort: 15001 },
          { address: '10.0.0.7', port: 5432, toPort: 15002 },
          { address: '2001:DB8:0:0::5', port: 443, toPort: 15003 },
        ],
      },
    ],
    inbound: [
      { port: 8080, toPort: 20000 },
      { port: 443, toPort: 20001 },
    ],
    exclude: {
      inboundPorts: [8500, 8300],
      outboundPorts: [8500],
      outboundCidrs: ['169.254.0.0/16', 'fe80::/10'],
      uids: [0],
    },
  };
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim());
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  expect.fail('expected an error');
}

describe('nftables/ruleset renderRuleset', () => {
  it('renders the table with per-uid v4/v6 maps, in_ports and both chains', () => {
    const text = renderRuleset(plan());
    const l = lines(text);
    expect(l[0]).to.equal('table inet trellis {');
    expect(l).to.include('map out4_u1001 {');
    expect(l).to.include('type ipv4_addr . inet_service : inet_service');
    // sorted by address: 10.0.0.7 before 240.0.0.5
    expect(text).to.match(
      /elements = \{ 10\.0\.0\.7 \. 5432 : 15002,\s+240\.0\.0\.5 \. 80 : 15001 \}/,
    );
    expect(l).to.include('map out6_u1001 {');
    expect(l).to.include('elements = { 2001:db8::5 . 443 : 15003 }'); // canonical v6
    expect(l).to.include('map in_ports {');
    expect(l).to.include('elements = { 443 : 20001,');
    expect(l).to.include('type nat hook output priority -100; policy accept;');
    expect(l).to.include('meta skuid 990 return');
    expect(l).to.include('meta skuid 0 return');
    expect(l).to.include('tcp dport 8500 return');
    expect(l).to.include('ip daddr 169.254.0.0/16 return');
    expect(l).to.include('ip6 daddr fe80::/10 return');
    expect(l).to.include(
      'meta skuid 1001 meta l4proto tcp redirect to : ip daddr . tcp dport map @out4_u1001',
    );
    expect(l).to.include(
      'meta skuid 1001 meta l4proto tcp redirect to : ip6 daddr . tcp dport map @out6_u1001',
    );
    expect(l).to.include('type nat hook prerouting priority -100; policy accept;');
    expect(l).to.include('iifname "lo" return');
    expect(l).to.include('tcp dport { 22, 8300, 8500 } return');
    expect(l).to.include('meta l4proto tcp redirect to : tcp dport map @in_ports');
    // the proxy uid return comes before any redirect (no loops)
    expect(l.indexOf('meta skuid 990 return')).to.be.lessThan(
      l.findIndex((x) => x.includes('redirect')),
    );
    expect(text.endsWith('}\n')).to.equal(true);
  });

  it('is deterministic: the same plan in another order renders the same text', () => {
    const a = plan();
    const b = plan();
    b.outbound[0].targets.reverse();
    b.inbound.reverse();
    b.exclude.inboundPorts.reverse();
    b.exclude.outboundCidrs.reverse();
    b.outbound.push({ uid: 1000, targets: [{ address: '240.0.0.9', port: 9, toPort: 15009 }] });
    a.outbound.unshift({ uid: 1000, targets: [{ address: '240.0.0.9', port: 9, toPort: 15009 }] });
    expect(renderRuleset(a)).to.equal(renderRuleset(b));
    const text = renderRuleset(a);
    expect(text.indexOf('out4_u1000')).to.be.lessThan(text.indexOf('out4_u1001'));
  });

  it('excludes SSH (inbound 22) by default and only then', () => {
    const p = plan();
    p.exclude.inboundPorts = [];
    expect(lines(renderRuleset(p))).to.include('tcp dport 22 return');
    p.redirectSsh = true;
    expect(renderRuleset(p)).not.to.match(/dport 22 return/);
  });

  it('renders empty maps without elements and omits their redirect rules', () => {
    const text = renderRuleset({
      proxyUid: 990,
      outbound: [{ uid: 1001, targets: [] }],
      inbound: [],
      exclude: { inboundPorts: [], outboundPorts: [], outboundCidrs: [], uids: [] },
    });
    expect(text).not.to.contain('elements');
    expect(text).to.contain('map out4_u1001 {');
    expect(text).not.to.contain('redirect');
  });

  it('adds DNS redirects for captured uids when dns is set', () => {
    const p = plan();
    p.dns = { port: 8600 };
    const l = lines(renderRuleset(p));
    expect(l).to.include('meta skuid 1001 udp dport 53 dnat ip to 127.0.0.1:8600');
    expect(l).to.include('meta skuid 1001 tcp dport 53 dnat ip to 127.0.0.1:8600');
    // before the CIDR exclusions, so a resolver in an excluded network is still captured
    expect(l.indexOf('meta skuid 1001 udp dport 53 dnat ip to 127.0.0.1:8600')).to.be.lessThan(
      l.indexOf('ip daddr 169.254.0.0/16 return'),
    );
  });

  it('canonicalises CIDRs (host bits cleared, bare address = host route)', () => {
    const p = plan();
    p.exclude.outboundCidrs = ['10.1.2.3/8', '192.168.1.1', '2001:db8::1/32'];
    const l = lines(renderRuleset(p));
    expect(l).to.include('ip daddr { 10.0.0.0/8, 192.168.1.1/32 } return');
    expect(l).to.include('ip6 daddr 2001:db8::/32 return');
  });

  it('wholeFile is ensure + delete + the table; removeFile is ensure + delete', () => {
    expect(removeFile()).to.equal('table inet trellis {}\ndelete table inet trellis\n');
    expect(wholeFile(plan())).to.equal(removeFile() + renderRuleset(plan()));
    expect(dryRun(plan())).to.equal(wholeFile(plan()));
  });

  describe('validation names the bad field', () => {
    const cases: Array<[string, (p: RedirectPlan) => void, string]> = [
      [
        'bad address',
        (p) => (p.outbound[0].targets[2].address = '300.1.1.1'),
        'outbound[0].targets[2].address: "300.1.1.1" is not an IP address',
      ],
      [
        'port 0',
        (p) => (p.outbound[0].targets[0].port = 0),
        'outbound[0].targets[0].port: 0 is not a port',
      ],
      [
        'toPort too big',
        (p) => (p.inbound[1].toPort = 70000),
        'inbound[1].toPort: 70000 is not a port',
      ],
      [
        'fractional port',
        (p) => (p.exclude.outboundPorts[0] = 1.5),
        'exclude.outboundPorts[0]: 1.5',
      ],
      ['negative uid', (p) => (p.outbound[0].uid = -1), 'outbound[0].uid: -1 is not a uid'],
      ['proxy uid', (p) => (p.proxyUid = 1.2), 'proxyUid: 1.2 is not a uid'],
      ['excluded uid', (p) => (p.exclude.uids = [0, NaN]), 'exclude.uids[1]'],
      [
        'bad CIDR',
        (p) => (p.exclude.outboundCidrs = ['10.0.0.0/33']),
        'exclude.outboundCidrs[0]: "10.0.0.0/33" is not a CIDR',
      ],
      ['garbage CIDR', (p) => (p.exclude.outboundCidrs = ['fe80::/x']), 'exclude.outboundCidrs[0]'],
      ['dns port', (p) => (p.dns = { port: 0 }), 'dns.port'],
      [
        'capturing the proxy',
        (p) => (p.outbound[0].uid = 990),
        'outbound[0].uid: 990 is the proxy uid',
      ],
      [
        'conflicting targets',
        (p) => p.outbound[0].targets.push({ address: '240.0.0.5', port: 80, toPort: 1 }),
        'outbound[0].targets[3]: 240.0.0.5:80 is already mapped to 15001',
      ],
    ];
    for (const [name, mutate, message] of cases) {
      it(name, () => {
        const p = plan();
        mutate(p);
        const err = errorOf(() => validatePlan(p));
        expect(err.message).to.contain(message);
        expect(() => renderRuleset(p)).to.throw(message);
      });
    }
  });

  it('lineDiff shows only differing lines', () => {
    expect(lineDiff('a\nb\nc', 'a\nx\nc')).to.equal('- b\n+ x');
    expect(lineDiff('a', 'a')).to.equal('');
  });
});

describe('nftables/ruleset virtual IPs', () => {
  it('renders an address-only map per uid, after the address:port map', () => {
    const p = plan();
    p.outbound[0].vips = [
      { address: '240.0.0.9', toPort: 15009 },
      { address: '240.0.0.2', toPort: 15002 },
      { address: 'fd00::9', toPort: 15009 },
    ];
    const text = renderRuleset(p);
    expect(text).to.contain('map vip4_u1001 {');
    expect(text).to.contain('type ipv4_addr : inet_service');
    expect(text.indexOf('240.0.0.2 : 15002')).to.be.lessThan(text.indexOf('240.0.0.9 : 15009'));
    expect(text).to.contain('map vip6_u1001 {');
    const l = lines(text);
    const portRule = l.indexOf(
      'meta skuid 1001 meta l4proto tcp redirect to : ip daddr . tcp dport map @out4_u1001',
    );
    const vipRule = l.indexOf(
      'meta skuid 1001 meta l4proto tcp redirect to : ip daddr map @vip4_u1001',
    );
    expect(portRule).to.be.greaterThan(-1);
    expect(vipRule).to.be.greaterThan(portRule);
  });

  it('has no VIP map without VIPs', () => {
    expect(renderRuleset(plan())).not.to.contain('vip4_');
  });

  it('refuses one VIP mapped to two ports, naming the field', () => {
    const p = plan();
    p.outbound[0].vips = [
      { address: '240.0.0.9', toPort: 15009 },
      { address: '240.0.0.9', toPort: 15010 },
    ];
    const e = errorOf(() => validatePlan(p));
    expect(e.message).to.contain('outbound[0].vips[1]');
    const q = plan();
    q.outbound[0].vips = [{ address: '240.0.0.300', toPort: 1 }];
    expect(errorOf(() => validatePlan(q)).message).to.contain('outbound[0].vips[0].address');
  });
});

describe('nftables/ruleset cgroup selection', () => {
  it('selects a cgroup entry with socket cgroupv2 at the path depth', () => {
    const p = plan();
    p.outbound.push({
      cgroup: 'system.slice/api.service',
      targets: [{ address: '240.0.0.7', port: 80, toPort: 15007 }],
    });
    const text = renderRuleset(p);
    expect(text).to.match(/map out4_c[0-9a-f]{10} \{/);
    expect(text).to.match(
      /socket cgroupv2 level 2 "system\.slice\/api\.service" meta l4proto tcp redirect to : ip daddr \. tcp dport map @out4_c[0-9a-f]{10}/,
    );
    expect(renderRuleset(p)).to.equal(text);
  });

  it('refuses an entry with both or neither selector, and an unsafe path', () => {
    const both = plan();
    both.outbound[0]!.cgroup = 'a.slice';
    expect(errorOf(() => validatePlan(both)).message).to.contain('exactly one of uid and cgroup');
    for (const bad of ['a/../b', 'a"b', '/abs', 'a b']) {
      const p = plan();
      p.outbound.push({ cgroup: bad, targets: [] });
      expect(errorOf(() => validatePlan(p)).message).to.contain('is not a cgroup path');
    }
  });
});
