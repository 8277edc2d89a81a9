import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { promises as dnsp } from 'node:dns';
import net from 'node:net';
import { promisify } from 'node:util';
import type { DnsInstance, DnsView } from '../../../src/agent/dns/answer.js';
import { startDnsServer, type DnsServer } from '../../../src/agent/dns/server.js';
import {
  decodeResponse,
  encodeQuery,
  QTYPE,
  RCODE,
  type DecodedResponse,
} from '../../../src/agent/dns/wire.js';

const run = promisify(execFile);

const view: DnsView = {
  async healthyInstances(service: string, tag?: string): Promise<DnsInstance[]> {
    const all: Record<string, DnsInstance[]> = {
      web: [
        { node: 'n1', nodeAddress: '10.0.0.1', serviceAddress: '', port: 8080, tags: ['v1'] },
        { node: 'n2', nodeAddress: '10.0.0.2', serviceAddress: '', port: 8081, tags: ['v2'] },
      ],
      big: Array.from({ length: 100 }, (_, i) => ({
        node: `node-${i}`,
        nodeAddress: `10.1.0.${i}`,
        serviceAddress: '',
        port: 9000 + i,
        tags: [],
      })),
    };
    const list = all[service] ?? [];
    return tag === undefined ? list : list.filter((i) => i.tags.includes(tag));
  },
  async nodeAddress(node: string): Promise<string | undefined> {
    return { n1: '10.0.0.1', n2: '10.0.0.2' }[node];
  },
  async virtualIp(service: string): Promise<string | undefined> {
    return service === 'web' ? '240.0.0.1' : undefined;
  },
  async preparedQuery() {
    return undefined;
  },
};

/** One UDP query; resent every 500 ms (as resolvers do: a flood may fill the socket buffer). */
function udpQuery(port: number, msg: Buffer, timeoutMs = 3000): Promise<DecodedResponse> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const send = (): void => sock.send(msg, port, '127.0.0.1');
    const resend = setInterval(send, 500);
    const timer = setTimeout(() => {
      clearInterval(resend);
      sock.close();
      reject(new Error('udp query timed out'));
    }, timeoutMs);
    sock.on('message', (m) => {
      const r = decodeResponse(m);
      if (r.id !== msg.readUInt16BE(0)) return;
      clearTimeout(timer);
      clearInterval(resend);
      sock.close();
      resolve(r);
    });
    send();
  });
}

/** Send raw bytes on a TCP connection; collect framed replies until the server closes or `want` arrive. */
function tcpExchange(
  port: number,
  raw: Buffer | Buffer[],
  want: number,
  timeoutMs = 3000,
): Promise<{ replies: Buffer[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`tcp exchange timed out with ${replies.length} replies`));
    }, timeoutMs);
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ replies, closed });
    };
    sock.on('connect', () => {
      const chunks = Array.isArray(raw) ? raw : [raw];
      // Separate writes, spaced out so the server sees them as separate reads.
      chunks.forEach((c, i) => setTimeout(() => sock.write(c), i * 5));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (want > 0 && replies.length >= want) done(false);
    });
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
  });
}

const frame = (m: Buffer): Buffer => {
  const b = Buffer.alloc(2 + m.length);
  b.writeUInt16BE(m.length, 0);
  m.copy(b, 2);
  return b;
};

describe('dns: server (udp + tcp)', function () {
  this.timeout(30000);
  let server: DnsServer;
  let resolver: dnsp.Resolver;
  const warnings: object[] = [];

  before(async () => {
    server = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      view,
      domain: 'consul.',
      datacenter: 'dc1',
      nodeName: 'agent-1',
      ttl: 0,
      agentAddress: '127.0.0.1',
      now: () => 1_700_000_000_000,
      tcpIdleMs: 1000,
      log: { warn: (o) => warnings.push(o) },
    });
    resolver = new dnsp.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
  });
  after(async () => {
    await server?.close();
  });

  it('listens on one port number for UDP and TCP', () => {
    expect(server.address).to.equal('127.0.0.1');
    expect(server.port).to.be.greaterThan(0);
  });

  it('answers Node resolve4, resolveSrv, and NXDOMAIN as ENOTFOUND', async () => {
    expect(await resolver.resolve4('web.service.consul')).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    expect(await resolver.resolve4('web.virtual.consul')).to.deep.equal(['240.0.0.1']);
    expect(await resolver.resolve4('n2.node.dc1.consul')).to.deep.equal(['10.0.0.2']);
    const srv = await resolver.resolveSrv('_web._tcp.service.consul');
    expect(srv).to.deep.equal([
      { name: 'n1.node.dc1.consul', port: 8080, priority: 1, weight: 1 },
      { name: 'n2.node.dc1.consul', port: 8081, priority: 1, weight: 1 },
    ]);
    let code: string | undefined;
    try {
      await resolver.resolve4('missing.service.consul');
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code;
    }
    expect(code).to.equal('ENOTFOUND');
  });

  it('answers dig over UDP and TCP', async () => {
    const base = ['@127.0.0.1', '-p', String(server.port), '+time=2', '+tries=1'];
    const udp = await run('dig', [...base, 'web.service.consul', 'A', '+short']);
    expect(udp.stdout.trim().split('\n')).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    const tcp = await run('dig', [...base, 'web.service.consul', 'A', '+short', '+tcp']);
    expect(tcp.stdout.trim().split('\n')).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    const srv = await run('dig', [...base, 'v2.web.service.consul', 'SRV', '+short', '+tcp']);
    expect(srv.stdout.trim()).to.equal('1 1 8081 n2.node.dc1.consul.');
    const nx = await run('dig', [...base, 'nope.service.consul', 'A']);
    expect(nx.stdout).to.match(/status: NXDOMAIN/);
    expect(nx.stdout).to.match(
      /consul\.\s+0\s+IN\s+SOA\s+ns\.consul\. hostmaster\.consul\. 1700000000 3600 600 86400 0/,
    );
    const refused = await run('dig', [...base, 'example.com', 'A']);
    expect(refused.stdout).to.match(/status: REFUSED/);
    const full = await run('dig', [...base, 'web.service.consul', 'SRV']);
    expect(full.stdout).to.match(/flags: qr aa rd;/);
    expect(full.stdout).to.match(/n1\.node\.dc1\.consul\.\s+0\s+IN\s+A\s+10\.0\.0\.1/);
  });

  it('truncates big UDP answers (TC) and gives the full answer over TCP', async () => {
    const udp = await udpQuery(server.port, encodeQuery(42, 'big.service.consul', QTYPE.A));
    expect(udp.id).to.equal(42);
    expect(udp.tc).to.equal(true);
    expect(udp.answers.length).to.be.lessThan(100);
    const edns = await udpQuery(
      server.port,
      encodeQuery(43, 'big.service.consul', QTYPE.A, { udpSize: 4096 }),
    );
    expect(edns.tc).to.equal(false);
    expect(edns.answers).to.have.length(100);
    const { replies } = await tcpExchange(
      server.port,
      frame(encodeQuery(44, 'big.service.consul', QTYPE.SRV)),
      1,
    );
    const r = decodeResponse(replies[0]);
    expect(r.tc).to.equal(false);
    expect(r.answers).to.have.length(100);
    expect(r.additional).to.have.length(100);
    // dig retries over TCP on TC by itself
    const dig = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(server.port),
      '+time=2',
      '+tries=1',
      'big.service.consul',
      'A',
      '+short',
      '+noedns',
    ]);
    expect(dig.stdout.trim().split('\n')).to.have.length(100);
  });

  it('answers several queries on one TCP connection, split across writes', async () => {
    const all = Buffer.concat(
      [1, 2, 3].map((id) => frame(encodeQuery(id, 'web.service.consul', QTYPE.A))),
    );
    const { replies } = await tcpExchange(server.port, all, 3);
    expect(replies.map((r) => decodeResponse(r).id)).to.deep.equal([1, 2, 3]);
    // the same, dribbled out in 7-octet pieces (length prefixes split too)
    const pieces: Buffer[] = [];
    for (let k = 0; k < all.length; k += 7) pieces.push(all.subarray(k, k + 7));
    const dribbled = await tcpExchange(server.port, pieces, 3);
    expect(dribbled.replies.map((r) => decodeResponse(r).answers.length)).to.deep.equal([2, 2, 2]);
    expect(dribbled.closed).to.equal(false);
  });

  it('closes a TCP connection that sends garbage, and one that idles', async () => {
    const garbage = await tcpExchange(server.port, Buffer.from([0, 3, 1, 2, 3]), 0);
    expect(garbage.closed).to.equal(true);
    // readable id, unparsable question: FORMERR, then closed
    const bad = Buffer.alloc(14);
    bad.writeUInt16BE(0x77, 0);
    bad.writeUInt16BE(1, 4);
    bad[12] = 0xc0;
    bad[13] = 0x20;
    const formerr = await tcpExchange(server.port, frame(bad), 0);
    expect(formerr.closed).to.equal(true);
    expect(formerr.replies.map((r) => decodeResponse(r))).to.have.length(1);
    expect(decodeResponse(formerr.replies[0])).to.deep.include({ id: 0x77, rcode: RCODE.FORMERR });
    const idle = await tcpExchange(server.port, Buffer.alloc(0), 0, 5000);
    expect(idle.closed).to.equal(true);
  });

  it('answers FORMERR over UDP when the header is readable', async () => {
    const bad = Buffer.alloc(12);
    bad.writeUInt16BE(0x99, 0);
    bad.writeUInt16BE(5, 4);
    const r = await udpQuery(server.port, bad);
    expect(r).to.deep.include({ id: 0x99, rcode: RCODE.FORMERR });
  });

  it('keeps serving after 1,000 random garbage UDP packets', async () => {
    const sock = dgram.createSocket('udp4');
    sock.on('message', () => undefined);
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    for (let i = 0; i < 1000; i++) {
      const len = randomBytes(2).readUInt16BE(0) % 700;
      const pkt = randomBytes(len);
      if (i % 3 === 0 && len >= 6) pkt.writeUInt16BE(1, 4); // look like a one-question query
      if (i % 3 === 0 && len >= 3) pkt[2] &= 0x7f; // and not a response
      await new Promise<void>((resolve) =>
        sock.send(pkt, server.port, '127.0.0.1', () => resolve()),
      );
    }
    sock.close();
    const r = await udpQuery(server.port, encodeQuery(7, 'web.service.consul', QTYPE.A));
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers.map((a) => a.data)).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    expect(await resolver.resolve4('web.service.consul')).to.deep.equal(['10.0.0.1', '10.0.0.2']);
  });

  it('a second server on port 0 gets its own port; close() frees it', async () => {
    const s2 = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      view,
      domain: 'consul.',
      datacenter: 'dc1',
      nodeName: 'agent-2',
      ttl: 0,
    });
    expect(s2.port).to.not.equal(server.port);
    await s2.close();
    const s3 = await startDnsServer({
      ...{ host: '127.0.0.1', view, domain: 'consul', datacenter: 'dc1', nodeName: 'x', ttl: 0 },
      port: s2.port,
    });
    expect(s3.port).to.equal(s2.port);
    await s3.close();
  });
});
