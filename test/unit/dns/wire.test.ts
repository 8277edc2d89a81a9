import { expect } from 'chai';
import {
  decodeResponse,
  DnsFormatError,
  encodeError,
  encodeQuery,
  encodeResponse,
  ipv6Bytes,
  parseQuery,
  QTYPE,
  RCODE,
  udpLimit,
  type RR,
  type Response,
} from '../../../src/agent/dns/wire.js';
import { fuzzedDnsQueries } from '../../helpers/dns-fuzz.js';

const header = (id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
};
const qtail = Buffer.from([0, 1, 0, 1]); // A IN

const ok = (answers: RR[], extra: Partial<Response> = {}): Response => ({
  rcode: 0,
  authoritative: true,
  answers,
  authority: [],
  additional: [],
  ...extra,
});

describe('dns: wire', () => {
  it('parses a query: id, RD, lower-cased name and labels, type, class', () => {
    const q = parseQuery(encodeQuery(0x1234, 'Web.Service.CONSUL', QTYPE.SRV));
    expect(q).to.deep.include({
      id: 0x1234,
      rd: true,
      opcode: 0,
      name: 'web.service.consul.',
      labels: ['web', 'service', 'consul'],
      qtype: QTYPE.SRV,
      qclass: 1,
    });
    expect(q.udpSize).to.equal(undefined);
    expect(udpLimit(q)).to.equal(512);
  });

  it('reads the advertised UDP size from an OPT record, clamped to 512..4096', () => {
    expect(udpLimit(parseQuery(encodeQuery(1, 'a.consul', QTYPE.A, { udpSize: 1232 })))).to.equal(
      1232,
    );
    expect(udpLimit(parseQuery(encodeQuery(1, 'a.consul', QTYPE.A, { udpSize: 65000 })))).to.equal(
      4096,
    );
    expect(udpLimit(parseQuery(encodeQuery(1, 'a.consul', QTYPE.A, { udpSize: 100 })))).to.equal(
      512,
    );
  });

  it('round-trips A, AAAA, SRV, SOA, NS and CNAME records', () => {
    const q = parseQuery(encodeQuery(7, 'web.service.consul', QTYPE.ANY));
    const buf = encodeResponse(
      q,
      ok(
        [
          { name: 'web.service.consul.', type: 'A', ttl: 5, address: '10.0.0.1' },
          { name: 'web.service.consul.', type: 'AAAA', ttl: 5, address: '2001:db8::1' },
          {
            name: 'web.service.consul.',
            type: 'SRV',
            ttl: 5,
            priority: 1,
            weight: 1,
            port: 8080,
            target: 'n1.node.dc1.consul.',
          },
          { name: 'web.service.consul.', type: 'CNAME', ttl: 5, target: 'example.com.' },
        ],
        {
          authority: [
            {
              name: 'consul.',
              type: 'SOA',
              ttl: 0,
              mname: 'ns.consul.',
              rname: 'hostmaster.consul.',
              serial: 1700000000,
              refresh: 3600,
              retry: 600,
              expire: 86400,
              minimum: 0,
            },
          ],
          additional: [{ name: 'consul.', type: 'NS', ttl: 0, target: 'ns.consul.' }],
        },
      ),
    );
    const r = decodeResponse(buf);
    expect(r).to.deep.include({ id: 7, rcode: 0, aa: true, tc: false });
    expect(r.flags & 0x8000).to.not.equal(0);
    expect(r.flags & 0x0100).to.not.equal(0); // RD echoed
    expect(r.question).to.deep.equal({ name: 'web.service.consul.', qtype: QTYPE.ANY, qclass: 1 });
    expect(r.answers.map((a) => a.data)).to.deep.equal([
      '10.0.0.1',
      '2001:db8:0:0:0:0:0:1',
      { priority: 1, weight: 1, port: 8080, target: 'n1.node.dc1.consul.' },
      'example.com.',
    ]);
    expect(r.answers.map((a) => a.ttl)).to.deep.equal([5, 5, 5, 5]);
    expect(r.authority[0]).to.deep.include({ name: 'consul.', type: QTYPE.SOA });
    expect(r.authority[0].data).to.deep.equal({
      mname: 'ns.consul.',
      rname: 'hostmaster.consul.',
      serial: 1700000000,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 0,
    });
    expect(r.additional[0]).to.deep.include({
      name: 'consul.',
      type: QTYPE.NS,
      data: 'ns.consul.',
    });
  });

  it('compresses names: the question name is written once and pointed to', () => {
    const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.A));
    const answers: RR[] = [1, 2, 3].map((i) => ({
      name: 'web.service.consul.',
      type: 'A',
      ttl: 0,
      address: `10.0.0.${i}`,
    }));
    const buf = encodeResponse(q, ok(answers));
    // header 12 + question (20 + 4) + 3 * (pointer 2 + 10 + 4)
    expect(buf.length).to.equal(12 + 24 + 3 * 16);
    expect(buf.indexOf(Buffer.from('\x03web', 'latin1'))).to.equal(12);
    expect(buf.indexOf(Buffer.from('\x03web', 'latin1'), 13)).to.equal(-1);
    expect(buf.readUInt16BE(36)).to.equal(0xc000 | 12);
    expect(decodeResponse(buf).answers.map((a) => a.name)).to.deep.equal(
      Array(3).fill('web.service.consul.'),
    );
  });

  it('compresses shared suffixes of other names', () => {
    const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.SRV));
    const buf = encodeResponse(
      q,
      ok([], { authority: [{ name: 'consul.', type: 'NS', ttl: 0, target: 'ns.consul.' }] }),
    );
    // "consul." points into the question; "ns.consul." is "ns" + pointer.
    expect(buf.length).to.equal(12 + 24 + 2 + 10 + 3 + 2);
    expect(decodeResponse(buf).authority[0]).to.deep.include({
      name: 'consul.',
      data: 'ns.consul.',
    });
  });

  it('truncates above maxSize: drops answers and sets TC', () => {
    const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.A));
    const answers: RR[] = Array.from({ length: 100 }, (_, i) => ({
      name: 'web.service.consul.',
      type: 'A',
      ttl: 0,
      address: `10.0.${i >> 8}.${i & 255}`,
    }));
    const small = encodeResponse(q, ok(answers));
    expect(small.length).to.be.at.most(512);
    const r = decodeResponse(small);
    expect(r.tc).to.equal(true);
    expect(r.answers.length).to.equal(Math.floor((512 - 36) / 16));
    const big = decodeResponse(encodeResponse(q, ok(answers), 4096));
    expect(big.tc).to.equal(false);
    expect(big.answers.length).to.equal(100);
  });

  it('drops additional records that do not fit without setting TC', () => {
    const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.SRV));
    const additional: RR[] = Array.from({ length: 40 }, (_, i) => ({
      name: `node-${i}.node.dc1.consul.`,
      type: 'A',
      ttl: 0,
      address: `10.0.0.${i}`,
    }));
    const buf = encodeResponse(q, ok([], { additional }));
    expect(buf.length).to.be.at.most(512);
    const r = decodeResponse(buf);
    expect(r.tc).to.equal(false);
    expect(r.additional.length).to.be.greaterThan(0).and.lessThan(40);
  });

  it('echoes an OPT record when the query had one, within the size limit', () => {
    const q = parseQuery(encodeQuery(1, 'web.service.consul', QTYPE.A, { udpSize: 1232 }));
    const answers: RR[] = Array.from({ length: 200 }, (_, i) => ({
      name: 'web.service.consul.',
      type: 'A',
      ttl: 0,
      address: `10.1.${i >> 8}.${i & 255}`,
    }));
    const buf = encodeResponse(q, ok(answers), udpLimit(q));
    expect(buf.length).to.be.at.most(1232);
    const r = decodeResponse(buf);
    expect(r.tc).to.equal(true);
    const opt = r.additional.at(-1);
    expect(opt).to.deep.include({ name: '.', type: QTYPE.OPT, class: 4096 });
  });

  it('encodes a header-only FORMERR', () => {
    const r = decodeResponse(encodeError(0xbeef, RCODE.FORMERR));
    expect(r).to.deep.include({ id: 0xbeef, rcode: RCODE.FORMERR, answers: [] });
    expect(r.question).to.equal(undefined);
  });

  it('expands IPv6 addresses, including embedded IPv4', () => {
    expect(ipv6Bytes('::1').toString('hex')).to.equal('00000000000000000000000000000001');
    expect(ipv6Bytes('fe80::1%eth0').toString('hex')).to.equal('fe800000000000000000000000000001');
    expect(ipv6Bytes('::ffff:10.0.0.1').toString('hex')).to.equal(
      '00000000000000000000ffff0a000001',
    );
    expect(ipv6Bytes('2001:db8:1:2:3:4:5:6').toString('hex')).to.equal(
      '20010db8000100020003000400050006',
    );
  });

  describe('hostile packets', () => {
    const label = (n: number): Buffer => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, 0x61)]);
    const cases: [string, Buffer, boolean][] = [
      ['empty', Buffer.alloc(0), false],
      ['11 bytes', Buffer.alloc(11), false],
      ['header only, qdcount 1', header(1, 0x100, 1), true],
      ['qdcount 0', Buffer.concat([header(1, 0, 0), Buffer.from([0]), qtail]), true],
      ['qdcount 5', Buffer.concat([header(1, 0, 5), Buffer.from([0]), qtail]), true],
      ['pointer to itself', Buffer.concat([header(1, 0, 1), Buffer.from([0xc0, 12]), qtail]), true],
      [
        'pointer loop (a -> b -> a)',
        Buffer.concat([
          header(1, 0, 1),
          Buffer.from([1, 0x61, 0xc0, 16, 1, 0x62, 0xc0, 12]),
          qtail,
        ]),
        true,
      ],
      [
        'pointer forward past end',
        Buffer.concat([header(1, 0, 1), Buffer.from([0xff, 0xff]), qtail]),
        true,
      ],
      ['pointer truncated', Buffer.concat([header(1, 0, 1), Buffer.from([0xc0])]), true],
      ['label 64', Buffer.concat([header(1, 0, 1), label(64), Buffer.from([0]), qtail]), true],
      [
        '300-byte name',
        Buffer.concat([
          header(1, 0, 1),
          label(63),
          label(63),
          label(63),
          label(63),
          label(40),
          Buffer.from([0]),
          qtail,
        ]),
        true,
      ],
      ['label runs past end', Buffer.concat([header(1, 0, 1), Buffer.from([10, 0x61])]), true],
      ['name without terminator', Buffer.concat([header(1, 0, 1), label(3)]), true],
      [
        'question without type/class',
        Buffer.concat([header(1, 0, 1), label(3), Buffer.from([0, 0, 1])]),
        true,
      ],
      [
        'reserved label type 0x40',
        Buffer.concat([header(1, 0, 1), Buffer.from([0x41, 0]), qtail]),
        true,
      ],
      [
        'additional record truncated',
        Buffer.concat([header(1, 0, 1, 0, 0, 1), Buffer.from([0]), qtail, Buffer.from([0, 0, 41])]),
        true,
      ],
      [
        'additional rdata past end',
        Buffer.concat([
          header(1, 0, 1, 0, 0, 1),
          Buffer.from([0]),
          qtail,
          Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 9]),
        ]),
        true,
      ],
      [
        'arcount 65535 with nothing',
        Buffer.concat([header(1, 0, 1, 0, 0, 0xffff), Buffer.from([0]), qtail]),
        true,
      ],
      [
        'a response (QR set)',
        Buffer.concat([header(1, 0x8000, 1), Buffer.from([0]), qtail]),
        false,
      ],
    ];
    for (const [name, buf, hasId] of cases) {
      it(`rejects: ${name}`, () => {
        let caught: unknown;
        try {
          parseQuery(buf);
        } catch (e) {
          caught = e;
        }
        expect(caught).to.be.instanceOf(DnsFormatError);
        expect((caught as DnsFormatError).id !== undefined).to.equal(hasId);
      });
    }

    it('accepts a 255-octet name and a backward pointer', () => {
      // 63+1 *3 + 61+1 + root = 255
      const name = Buffer.concat([label(63), label(63), label(63), label(61), Buffer.from([0])]);
      expect(name.length).to.equal(255);
      expect(parseQuery(Buffer.concat([header(1, 0, 1), name, qtail])).labels).to.have.length(4);
      // the question name points back into... itself is not allowed, but a valid one parses:
      const q = parseQuery(encodeQuery(9, 'x.consul', QTYPE.A, { udpSize: 4096 }));
      expect(q.name).to.equal('x.consul.');
    });

    it('survives 20,000 random packets: only DnsFormatError or a parse, quickly', () => {
      const started = process.hrtime.bigint();
      for (const buf of fuzzedDnsQueries(20000)) {
        try {
          parseQuery(buf);
        } catch (e) {
          expect(e).to.be.instanceOf(DnsFormatError);
        }
      }
      expect(Number(process.hrtime.bigint() - started) / 1e6).to.be.lessThan(5000);
    });
  });
});
