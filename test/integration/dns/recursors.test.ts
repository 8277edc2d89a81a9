/**
 * Forwarding to recursors over real sockets: upstream DNS servers on 127.0.0.1 started here
 * (made with our own wire codec) that answer, stay silent, fail, truncate or send garbage.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { promisify } from 'node:util';
import type { DnsView } from '../../../src/agent/dns/answer.js';
import { startDnsServer, type DnsServer } from '../../../src/agent/dns/server.js';
import {
  decodeResponse,
  encodeQuery,
  encodeResponse,
  parseQuery,
  QTYPE,
  RCODE,
  TCP_MAX_SIZE,
  type DecodedResponse,
  type Query,
  type RR,
} from '../../../src/agent/dns/wire.js';

const run = promisify(execFile);

type Behaviour = (q: Query, transport: 'udp' | 'tcp', raw: Buffer) => Buffer | undefined;

interface Upstream {
  port: number;
  /** Queries seen, by transport. */
  seen: { udp: number; tcp: number };
  close(): Promise<void>;
}

/**
 * A DNS server on 127.0.0.1 (UDP and TCP on one port) that does what `behaviour` says. The
 * kernel picks the UDP port; the same TCP port may be in use by another process, so it tries
 * again with a new one then.
 */
async function startUpstream(behaviour: Behaviour): Promise<Upstream> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startUpstreamOnce(behaviour);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
    }
  }
}

async function startUpstreamOnce(behaviour: Behaviour): Promise<Upstream> {
  const seen = { udp: 0, tcp: 0 };
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const port = udp.address().port;
  udp.on('message', (msg, rinfo) => {
    seen.udp++;
    const reply = behaviour(parseQuery(msg), 'udp', msg);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
      seen.tcp++;
      const reply = behaviour(parseQuery(msg), 'tcp', msg);
      if (!reply) return;
      const framed = Buffer.alloc(2 + reply.length);
      framed.writeUInt16BE(reply.length, 0);
      reply.copy(framed, 2);
      sock.end(framed);
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, '127.0.0.1', resolve);
    });
  } catch (err) {
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    throw err;
  }
  return {
    port,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}

const a = (name: string, address: string): RR => ({ name, type: 'A', ttl: 60, address });

/** A plain recursive server: one A record, `many` gives 60 of them (too big for 512 octets). */
const normal =
  (address: string): Behaviour =>
  (q, transport) => {
    const answers =
      q.labels[0] === 'many'
        ? Array.from({ length: 60 }, (_, i) => a(q.name, `10.9.${Math.floor(i / 250)}.${i % 250}`))
        : [a(q.name, address)];
    const r = encodeResponse(
      q,
      { rcode: RCODE.NOERROR, authoritative: false, answers, authority: [], additional: [] },
      transport === 'tcp' ? TCP_MAX_SIZE : 512,
    );
    r.writeUInt16BE(r.readUInt16BE(2) | 0x0080, 2); // RA, as a recursive server sets it
    return r;
  };

const silent: Behaviour = () => undefined;
const servfail: Behaviour = (q) =>
  encodeResponse(q, {
    rcode: RCODE.SERVFAIL,
    authoritative: false,
    answers: [],
    authority: [],
    additional: [],
  });

const emptyView: DnsView = {
  healthyInstances: async () => [],
  nodeAddress: async () => undefined,
  virtualIp: async () => undefined,
  preparedQuery: async () => undefined,
};

async function startAgentDns(upstreams: Upstream[], timeoutMs = 300): Promise<DnsServer> {
  return startDnsServer({
    host: '127.0.0.1',
    port: 0,
    view: emptyView,
    domain: 'consul.',
    datacenter: 'dc1',
    nodeName: 'n1',
    ttl: 0,
    recursors: upstreams.map((u) => ({ host: '127.0.0.1', port: u.port })),
    recursorTimeoutMs: timeoutMs,
  });
}

function udpQuery(port: number, msg: Buffer, timeoutMs = 5000): Promise<DecodedResponse> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error('udp query timed out'));
    }, timeoutMs);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(decodeResponse(m));
    });
    sock.send(msg, port, '127.0.0.1');
  });
}

function tcpQuery(port: number, msg: Buffer): Promise<DecodedResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('connect', () => {
      const framed = Buffer.alloc(2 + msg.length);
      framed.writeUInt16BE(msg.length, 0);
      msg.copy(framed, 2);
      sock.write(framed);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.destroy();
        resolve(decodeResponse(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
  });
}

describe('agent DNS: recursors', function () {
  this.timeout(30_000);
  const open: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    open.push(x);
    return x;
  };
  afterEach(async () => {
    for (const x of open.splice(0).reverse()) await x.close();
  });

  it('forwards names outside the domain and relays the answer with the client id', async () => {
    const up = track(await startUpstream(normal('93.184.216.34')));
    const dns = track(await startAgentDns([up]));
    const r = await udpQuery(dns.port, encodeQuery(4242, 'example.org', QTYPE.A));
    expect(r.id).to.equal(4242);
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.aa).to.equal(false);
    expect(r.answers.map((x) => x.data)).to.deep.equal(['93.184.216.34']);
    const t = await tcpQuery(dns.port, encodeQuery(7, 'Example.ORG', QTYPE.A));
    expect(t.id).to.equal(7);
    expect(t.answers.map((x) => x.data)).to.deep.equal(['93.184.216.34']);
    expect(up.seen).to.deep.equal({ udp: 1, tcp: 1 });
  });

  it('still answers its own domain itself', async () => {
    const up = track(await startUpstream(normal('93.184.216.34')));
    const dns = track(await startAgentDns([up]));
    const r = await udpQuery(dns.port, encodeQuery(1, 'nope.service.consul', QTYPE.A));
    expect(r.rcode).to.equal(RCODE.NXDOMAIN);
    expect(r.aa).to.equal(true);
    expect(up.seen.udp).to.equal(0);
  });

  it('moves on to the next recursor when one is silent or fails', async () => {
    const quiet = track(await startUpstream(silent));
    const failing = track(await startUpstream(servfail));
    const good = track(await startUpstream(normal('192.0.2.7')));
    const dns = track(await startAgentDns([quiet, failing, good]));
    const r = await udpQuery(dns.port, encodeQuery(9, 'example.net', QTYPE.A));
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers.map((x) => x.data)).to.deep.equal(['192.0.2.7']);
    expect(quiet.seen.udp).to.equal(1);
    expect(failing.seen.udp).to.equal(1);
  });

  it('answers SERVFAIL when every recursor fails', async () => {
    const quiet = track(await startUpstream(silent));
    const failing = track(await startUpstream(servfail));
    const dns = track(await startAgentDns([quiet, failing]));
    const r = await udpQuery(dns.port, encodeQuery(11, 'example.com', QTYPE.A));
    expect(r.id).to.equal(11);
    expect(r.rcode).to.equal(RCODE.SERVFAIL);
  });

  it('answers REFUSED for outside names without recursors', async () => {
    const dns = track(await startAgentDns([]));
    const r = await udpQuery(dns.port, encodeQuery(12, 'example.com', QTYPE.A));
    expect(r.rcode).to.equal(RCODE.REFUSED);
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    const up = track(await startUpstream(normal('unused')));
    const dns = track(await startAgentDns([up]));
    // The client advertises 4096 octets, so the whole answer fits its UDP reply.
    const r = await udpQuery(
      dns.port,
      encodeQuery(13, 'many.example.org', QTYPE.A, { udpSize: 4096 }),
    );
    expect(r.tc).to.equal(false);
    expect(r.answers).to.have.length(60);
    expect(up.seen).to.deep.equal({ udp: 1, tcp: 1 });
    // A client with 512 octets gets TC (and the full answer over TCP).
    const small = await udpQuery(dns.port, encodeQuery(14, 'many.example.org', QTYPE.A));
    expect(small.tc).to.equal(true);
    expect(small.id).to.equal(14);
    const full = await tcpQuery(dns.port, encodeQuery(15, 'many.example.org', QTYPE.A));
    expect(full.answers).to.have.length(60);
  });

  it('ignores hostile answers: garbage, wrong id, wrong question', async () => {
    const hostile: Behaviour[] = [
      () => Buffer.from([1, 2, 3]),
      (q) => {
        const r = normal('6.6.6.6')(q, 'udp', Buffer.alloc(0))!;
        r.writeUInt16BE((r.readUInt16BE(0) + 1) & 0xffff, 0);
        return r;
      },
      (q) =>
        normal('6.6.6.6')(
          { ...q, name: 'evil.example.', labels: ['evil', 'example'] },
          'udp',
          Buffer.alloc(0),
        ),
      (q, _t, raw) => {
        // A response header on a pointer loop.
        const b = Buffer.concat([raw.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
        b.writeUInt16BE(0x8180, 2);
        b.writeUInt16BE(1, 4);
        b.writeUInt16BE(1, 6);
        void q;
        return b;
      },
    ];
    const bad = [];
    for (const h of hostile) bad.push(track(await startUpstream(h)));
    const good = track(await startUpstream(normal('192.0.2.9')));
    const dns = track(await startAgentDns([...bad, good]));
    const r = await udpQuery(dns.port, encodeQuery(16, 'example.org', QTYPE.A));
    expect(r.rcode).to.equal(RCODE.NOERROR);
    expect(r.answers.map((x) => x.data)).to.deep.equal(['192.0.2.9']);
    const t = await tcpQuery(dns.port, encodeQuery(17, 'example.org', QTYPE.A));
    expect(t.answers.map((x) => x.data)).to.deep.equal(['192.0.2.9']);
  });

  it('works for dig, over UDP and TCP', async function () {
    try {
      await run('dig', ['-v']);
    } catch {
      this.skip();
    }
    const up = track(await startUpstream(normal('203.0.113.5')));
    const dns = track(await startAgentDns([up]));
    const udp = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(dns.port),
      'example.org',
      'A',
      '+short',
      '+tries=1',
      '+time=5',
    ]);
    expect(udp.stdout.trim()).to.equal('203.0.113.5');
    const tcp = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(dns.port),
      'many.example.org',
      'A',
      '+short',
      '+tcp',
      '+tries=1',
      '+time=5',
    ]);
    expect(tcp.stdout.trim().split('\n')).to.have.length(60);
    // Without +tcp dig gets TC over UDP and retries over TCP by itself.
    const auto = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(dns.port),
      'many.example.org',
      'A',
      '+short',
      '+noedns',
      '+tries=1',
      '+time=5',
    ]);
    expect(auto.stdout.trim().split('\n')).to.have.length(60);
  });
});
