import { expect } from 'chai';
import {
  answer,
  type AnswerOptions,
  type DnsInstance,
  type DnsView,
} from '../../../src/agent/dns/answer.js';
import {
  encodeQuery,
  parseQuery,
  QTYPE,
  RCODE,
  type Query,
  type RR,
} from '../../../src/agent/dns/wire.js';

const inst = (
  node: string,
  nodeAddress: string,
  port: number,
  tags: string[] = [],
  serviceAddress = '',
): DnsInstance => ({
  node,
  nodeAddress,
  serviceAddress,
  port,
  tags,
});

export class FakeView implements DnsView {
  calls: [string, string | undefined][] = [];
  services: Record<string, DnsInstance[]> = {
    web: [
      inst('n1', '10.0.0.1', 8080, ['v1', 'primary']),
      inst('n2', '10.0.0.2', 8081, ['v2'], '10.0.1.2'),
    ],
    api: [inst('n3', '2001:db8::3', 9090, ['v1'])],
    db: [],
    legacy: [inst('n4', '10.0.0.4', 5432, [], 'db.example.com')],
  };
  nodes: Record<string, string> = { n1: '10.0.0.1', n2: '10.0.0.2', n3: '2001:db8::3' };
  vips: Record<string, string> = { web: '240.0.0.1' };
  async healthyInstances(service: string, tag?: string): Promise<DnsInstance[]> {
    this.calls.push([service, tag]);
    const all = this.services[service] ?? [];
    return tag === undefined ? all : all.filter((i) => i.tags.includes(tag));
  }
  async nodeAddress(node: string): Promise<string | undefined> {
    return this.nodes[node];
  }
  async virtualIp(service: string): Promise<string | undefined> {
    return this.vips[service];
  }
  queries: Record<string, { instances: DnsInstance[]; ttl?: number }> = {
    'web-near': { instances: [inst('n2', '10.0.0.2', 8081, ['v2'])], ttl: 30 },
    'geo.db': { instances: [inst('n1', '10.0.0.1', 5432, [])] },
    empty: { instances: [] },
  };
  async preparedQuery(name: string) {
    return this.queries[name];
  }
}

const opts: AnswerOptions = {
  domain: 'consul.',
  datacenter: 'dc1',
  nodeName: 'agent-1',
  ttl: 0,
  agentAddress: '127.0.0.1',
  now: () => 1_700_000_000_123,
};

const q = (name: string, qtype: number = QTYPE.A): Query => parseQuery(encodeQuery(1, name, qtype));
const addrs = (rrs: RR[]): string[] => rrs.map((r) => ('address' in r ? r.address : `?${r.type}`));

const SOA = {
  name: 'consul.',
  type: 'SOA',
  ttl: 0,
  mname: 'ns.consul.',
  rname: 'hostmaster.consul.',
  serial: 1_700_000_000,
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 0,
};

describe('dns: answer', () => {
  let view: FakeView;
  beforeEach(() => {
    view = new FakeView();
  });

  it('<svc>.service.consul A: addresses of healthy instances, service address first, in order', async () => {
    const r = await answer(q('web.service.consul'), view, opts);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.authoritative).to.equal(true);
    expect(addrs(r.answers)).to.deep.equal(['10.0.0.1', '10.0.1.2']);
    expect(r.answers.every((a) => a.type === 'A' && a.name === 'web.service.consul.')).to.equal(
      true,
    );
    expect(r.authority).to.deep.equal([]);
    expect(view.calls).to.deep.equal([['web', undefined]]);
  });

  it('AAAA for IPv6 addresses, none for IPv4 (NOERROR, empty, SOA)', async () => {
    const r = await answer(q('api.service.consul', QTYPE.AAAA), view, opts);
    expect(r.answers).to.deep.equal([
      { name: 'api.service.consul.', type: 'AAAA', ttl: 0, address: '2001:db8::3' },
    ]);
    const a = await answer(q('api.service.consul', QTYPE.A), view, opts);
    expect(a.rcode).to.equal(RCODE.NOERROR);
    expect(a.answers).to.deep.equal([]);
    expect(a.authority).to.deep.equal([SOA]);
    const web6 = await answer(q('web.service.consul', QTYPE.AAAA), view, opts);
    expect(web6.answers).to.deep.equal([]);
  });

  it('a host-name service address is answered with a CNAME', async () => {
    const r = await answer(q('legacy.service.consul'), view, opts);
    expect(r.answers).to.deep.equal([
      { name: 'legacy.service.consul.', type: 'CNAME', ttl: 0, target: 'db.example.com.' },
    ]);
  });

  it('SRV: <node>.node.<dc>.<domain> targets, priority 1, weight 1, port, with A records in additional', async () => {
    const r = await answer(q('web.service.consul', QTYPE.SRV), view, opts);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers).to.deep.equal([
      {
        name: 'web.service.consul.',
        type: 'SRV',
        ttl: 0,
        priority: 1,
        weight: 1,
        port: 8080,
        target: 'n1.node.dc1.consul.',
      },
      {
        name: 'web.service.consul.',
        type: 'SRV',
        ttl: 0,
        priority: 1,
        weight: 1,
        port: 8081,
        target: 'n2.node.dc1.consul.',
      },
    ]);
    expect(r.additional).to.deep.equal([
      { name: 'n1.node.dc1.consul.', type: 'A', ttl: 0, address: '10.0.0.1' },
      { name: 'n2.node.dc1.consul.', type: 'A', ttl: 0, address: '10.0.1.2' },
    ]);
    const v6 = await answer(q('api.service.consul', QTYPE.SRV), view, opts);
    expect(v6.additional).to.deep.equal([
      { name: 'n3.node.dc1.consul.', type: 'AAAA', ttl: 0, address: '2001:db8::3' },
    ]);
  });

  it('<tag>.<svc>.service.consul filters by tag', async () => {
    const r = await answer(q('v2.web.service.consul'), view, opts);
    expect(addrs(r.answers)).to.deep.equal(['10.0.1.2']);
    expect(view.calls).to.deep.equal([['web', 'v2']]);
    const none = await answer(q('v9.web.service.consul'), view, opts);
    expect(none.rcode).to.equal(RCODE.NXDOMAIN);
  });

  it('RFC 2782 _<svc>._tcp and _<svc>._<tag> forms', async () => {
    const r = await answer(q('_web._tcp.service.consul', QTYPE.SRV), view, opts);
    expect(r.answers.map((a) => (a.type === 'SRV' ? a.port : 0))).to.deep.equal([8080, 8081]);
    const t = await answer(q('_web._v1.service.consul', QTYPE.SRV), view, opts);
    expect(t.answers.map((a) => (a.type === 'SRV' ? a.port : 0))).to.deep.equal([8080]);
    expect(view.calls).to.deep.equal([
      ['web', undefined],
      ['web', 'v1'],
    ]);
  });

  it('the .<dc> form, and NXDOMAIN for another datacenter', async () => {
    const r = await answer(q('web.service.dc1.consul'), view, opts);
    expect(addrs(r.answers)).to.deep.equal(['10.0.0.1', '10.0.1.2']);
    const tagged = await answer(q('v1.web.service.dc1.consul', QTYPE.SRV), view, opts);
    expect(tagged.answers).to.have.length(1);
    const node = await answer(q('n1.node.dc1.consul'), view, opts);
    expect(addrs(node.answers)).to.deep.equal(['10.0.0.1']);
    const other = await answer(q('web.service.dc2.consul'), view, opts);
    expect(other.rcode).to.equal(RCODE.NXDOMAIN);
    expect(other.authority).to.deep.equal([SOA]);
  });

  it('a service with no healthy instance, or unknown: NXDOMAIN with the SOA', async () => {
    for (const name of ['db.service.consul', 'nope.service.consul']) {
      const r = await answer(q(name), view, opts);
      expect(r.rcode, name).to.equal(RCODE.NXDOMAIN);
      expect(r.authoritative).to.equal(true);
      expect(r.answers).to.deep.equal([]);
      expect(r.authority).to.deep.equal([SOA]);
    }
  });

  it('names under the domain that match no form: NXDOMAIN with the SOA', async () => {
    for (const name of [
      'foo.consul',
      'web.services.consul',
      'service.consul',
      'a.b.web.service.consul',
      '_web.service.consul',
      'x.y.node.consul',
      'web.service.dc1.extra.consul',
    ]) {
      const r = await answer(q(name), view, opts);
      expect(r.rcode, name).to.equal(RCODE.NXDOMAIN);
      expect(r.authority, name).to.deep.equal([SOA]);
    }
  });

  it('known service, wrong type (TXT): NOERROR, no answers, SOA', async () => {
    const r = await answer(q('web.service.consul', QTYPE.TXT), view, opts);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers).to.deep.equal([]);
    expect(r.authority).to.deep.equal([SOA]);
  });

  it('<svc>.virtual.consul: A of the virtual IP, NXDOMAIN when none', async () => {
    const r = await answer(q('web.virtual.consul'), view, opts);
    expect(r.answers).to.deep.equal([
      { name: 'web.virtual.consul.', type: 'A', ttl: 0, address: '240.0.0.1' },
    ]);
    const none = await answer(q('api.virtual.consul'), view, opts);
    expect(none.rcode).to.equal(RCODE.NXDOMAIN);
    expect(none.authority).to.deep.equal([SOA]);
  });

  it('<node>.node.consul: A/AAAA of the node, NXDOMAIN when unknown', async () => {
    expect(addrs((await answer(q('n2.node.consul'), view, opts)).answers)).to.deep.equal([
      '10.0.0.2',
    ]);
    const v6 = await answer(q('n3.node.consul', QTYPE.AAAA), view, opts);
    expect(v6.answers).to.deep.equal([
      { name: 'n3.node.consul.', type: 'AAAA', ttl: 0, address: '2001:db8::3' },
    ]);
    const none = await answer(q('n9.node.consul'), view, opts);
    expect(none.rcode).to.equal(RCODE.NXDOMAIN);
  });

  it('consul. SOA and NS (with the agent address in additional)', async () => {
    const soa = await answer(q('consul', QTYPE.SOA), view, opts);
    expect(soa.rcode).to.equal(RCODE.NOERROR);
    expect(soa.answers).to.deep.equal([SOA]);
    const ns = await answer(q('consul', QTYPE.NS), view, opts);
    expect(ns.answers).to.deep.equal([
      { name: 'consul.', type: 'NS', ttl: 0, target: 'ns.consul.' },
    ]);
    expect(ns.additional).to.deep.equal([
      { name: 'ns.consul.', type: 'A', ttl: 0, address: '127.0.0.1' },
    ]);
    const a = await answer(q('consul', QTYPE.A), view, opts);
    expect(a.rcode).to.equal(RCODE.NOERROR);
    expect(a.authority).to.deep.equal([SOA]);
  });

  it('names outside the domain are REFUSED (no recursors)', async () => {
    for (const name of ['example.com', 'consul.example.com', '.', 'notconsul']) {
      const r = await answer(q(name), view, opts);
      expect(r.rcode, name).to.equal(RCODE.REFUSED);
      expect(r.authoritative).to.equal(false);
      expect(r.answers).to.deep.equal([]);
    }
  });

  it('is case-insensitive and honours a custom domain', async () => {
    const r = await answer(q('WEB.Service.MESH.internal'), view, {
      ...opts,
      domain: 'mesh.internal',
    });
    expect(addrs(r.answers)).to.deep.equal(['10.0.0.1', '10.0.1.2']);
    const refused = await answer(q('web.service.consul'), view, {
      ...opts,
      domain: 'mesh.internal.',
    });
    expect(refused.rcode).to.equal(RCODE.REFUSED);
  });

  it('uses the configured TTL on records', async () => {
    const r = await answer(q('web.service.consul'), view, { ...opts, ttl: 30 });
    expect(r.answers.map((a) => a.ttl)).to.deep.equal([30, 30]);
  });

  it('<query>.query.consul: A and SRV from the prepared query, with its DNS TTL', async () => {
    const a = await answer(q('web-near.query.consul'), view, opts);
    expect(a.answers).to.deep.equal([
      { name: 'web-near.query.consul.', type: 'A', ttl: 30, address: '10.0.0.2' },
    ]);
    const srv = await answer(q('web-near.query.dc1.consul', QTYPE.SRV), view, opts);
    expect(srv.answers).to.deep.equal([
      {
        name: 'web-near.query.dc1.consul.',
        type: 'SRV',
        ttl: 30,
        priority: 1,
        weight: 1,
        port: 8081,
        target: 'n2.node.dc1.consul.',
      },
    ]);
    expect(srv.additional).to.deep.equal([
      { name: 'n2.node.dc1.consul.', type: 'A', ttl: 30, address: '10.0.0.2' },
    ]);
  });

  it('<query>.query.consul: names with dots, the agent TTL without a query TTL, NXDOMAIN when empty or unknown', async () => {
    const r = await answer(q('geo.db.query.consul'), view, { ...opts, ttl: 5 });
    expect(r.answers).to.deep.equal([
      { name: 'geo.db.query.consul.', type: 'A', ttl: 5, address: '10.0.0.1' },
    ]);
    expect((await answer(q('empty.query.consul'), view, opts)).rcode).to.equal(RCODE.NXDOMAIN);
    expect((await answer(q('nope.query.consul'), view, opts)).rcode).to.equal(RCODE.NXDOMAIN);
    expect((await answer(q('web-near.query.dc9.consul'), view, opts)).rcode).to.equal(
      RCODE.NXDOMAIN,
    );
  });
});
