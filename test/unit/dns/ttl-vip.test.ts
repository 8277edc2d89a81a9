/** answer(): node and service TTLs (Consul's dns_config), another domain, and virtualIpsFor. */
import { expect } from 'chai';
import {
  answer,
  type AnswerOptions,
  type DnsInstance,
  type DnsView,
} from '../../../src/agent/dns/answer.js';
import { serviceTtlFor } from '../../../src/agent/dns/ttl.js';
import { encodeQuery, parseQuery, QTYPE, RCODE } from '../../../src/agent/dns/wire.js';

const inst = (node: string, address: string, port: number, tags: string[] = []): DnsInstance => ({
  node,
  nodeAddress: address,
  serviceAddress: '',
  port,
  tags,
});

/** Pure data for answer(): web has a virtual IP, api (IPv6) has none. */
class FakeView implements DnsView {
  services: Record<string, DnsInstance[]> = {
    web: [inst('n1', '10.0.0.1', 8080, ['v1']), inst('n2', '10.0.0.2', 8081)],
    api: [inst('n3', '2001:db8::3', 9090)],
  };
  async healthyInstances(service: string, tag?: string): Promise<DnsInstance[]> {
    const all = this.services[service] ?? [];
    return tag === undefined ? all : all.filter((i) => i.tags.includes(tag));
  }
  async nodeAddress(node: string): Promise<string | undefined> {
    return ({ n1: '10.0.0.1' } as Record<string, string>)[node];
  }
  async virtualIp(service: string): Promise<string | undefined> {
    return service === 'web' ? '240.0.0.1' : undefined;
  }
  async preparedQuery(): Promise<undefined> {
    return undefined;
  }
}

const base: AnswerOptions = {
  domain: 'consul.',
  datacenter: 'dc1',
  nodeName: 'agent-1',
  ttl: 0,
  now: () => 0,
};

const ask = (name: string, qtype: number, opts: AnswerOptions, view = new FakeView()) =>
  answer(parseQuery(encodeQuery(1, name, qtype)), view, opts);

describe('dns: TTLs and the domain', () => {
  it('looks service TTLs up as Consul does: exact, longest prefix*, then *', () => {
    const ttls = { '*': 5, 'we*': 7, 'web*': 8, web: 9 };
    expect(serviceTtlFor(ttls, 'web', 0)).to.equal(9);
    expect(serviceTtlFor(ttls, 'web-admin', 0)).to.equal(8);
    expect(serviceTtlFor(ttls, 'wet', 0)).to.equal(7);
    expect(serviceTtlFor(ttls, 'db', 0)).to.equal(5);
    expect(serviceTtlFor({ api: 1 }, 'db', 3)).to.equal(3);
    expect(serviceTtlFor(undefined, 'db', 3)).to.equal(3);
  });

  it('uses node_ttl for node records and service_ttl for service records', async () => {
    const opts = { ...base, nodeTtl: 10, serviceTtls: { '*': 5, web: 1 } };
    const node = await ask('n1.node.consul', QTYPE.A, opts);
    expect(node.answers.map((r) => r.ttl)).to.deep.equal([10]);
    const web = await ask('web.service.consul', QTYPE.A, opts);
    expect(web.answers.map((r) => r.ttl)).to.deep.equal([1, 1]);
    const srv = await ask('web.service.consul', QTYPE.SRV, opts);
    expect([...srv.answers, ...srv.additional].every((r) => r.ttl === 1)).to.equal(true);
    const api = await ask('api.service.consul', QTYPE.AAAA, opts);
    expect(api.answers.map((r) => r.ttl)).to.deep.equal([5]);
    const vip = await ask('web.virtual.consul', QTYPE.A, opts);
    expect(vip.answers.map((r) => r.ttl)).to.deep.equal([1]);
  });

  it('answers another domain, and refuses consul. then', async () => {
    const opts = { ...base, domain: 'mesh.example.' };
    const r = await ask('web.service.mesh.example', QTYPE.A, opts);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers[0]?.name).to.equal('web.service.mesh.example.');
    expect((await ask('web.service.consul', QTYPE.A, opts)).rcode).to.equal(RCODE.REFUSED);
  });
});

describe('dns: virtualIpsFor', () => {
  const on = { ...base, virtualIpsFor: () => true };

  it('answers <svc>.service A with the virtual IP, one record, when it returns true', async () => {
    const r = await ask('web.service.consul', QTYPE.A, on);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers).to.deep.equal([
      { name: 'web.service.consul.', type: 'A', ttl: 0, address: '240.0.0.1' },
    ]);
    // The RFC 2782 form, too.
    const rfc = await ask('_web._tcp.service.consul', QTYPE.A, on);
    expect(rfc.answers.map((a) => ('address' in a ? a.address : ''))).to.deep.equal(['240.0.0.1']);
  });

  it('keeps the real instances in SRV answers, and gives AAAA no data', async () => {
    const srv = await ask('web.service.consul', QTYPE.SRV, on);
    expect(srv.answers.map((a) => (a.type === 'SRV' ? a.port : 0))).to.deep.equal([8080, 8081]);
    const aaaa = await ask('web.service.consul', QTYPE.AAAA, on);
    expect(aaaa.rcode).to.equal(RCODE.NOERROR);
    expect(aaaa.answers).to.deep.equal([]);
  });

  it('answers real addresses for services without a virtual IP, for tags, and when false', async () => {
    const api = await ask('api.service.consul', QTYPE.AAAA, on);
    expect(api.answers.map((a) => ('address' in a ? a.address : ''))).to.deep.equal([
      '2001:db8::3',
    ]);
    const tagged = await ask('v1.web.service.consul', QTYPE.A, on);
    expect(tagged.answers.map((a) => ('address' in a ? a.address : ''))).to.deep.equal([
      '10.0.0.1',
    ]);
    let capturing = false;
    const toggled = { ...base, virtualIpsFor: () => capturing };
    const off = await ask('web.service.consul', QTYPE.A, toggled);
    expect(off.answers).to.have.length(2);
    capturing = true;
    const now = await ask('web.service.consul', QTYPE.A, toggled);
    expect(now.answers).to.have.length(1);
  });
});
