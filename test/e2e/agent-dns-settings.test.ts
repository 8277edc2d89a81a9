/**
 * The DNS settings through real processes: a server with --virtual-ip-range, an agent whose
 * config dir sets domain, dns_config and recursors (one upstream started here), and bad values
 * refused at start with file:line:column or a one-line flag error.
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeResponse, parseQuery, RCODE } from '../../src/agent/dns/wire.js';
import {
  agentArgs,
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

describe('agent DNS settings (processes)', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let upstream: dgram.Socket;
  let resolver: Resolver;

  before(async () => {
    // A recursive server for everything outside the mesh domain: one A record.
    upstream = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
    upstream.on('message', (msg, rinfo) => {
      const q = parseQuery(msg);
      const r = encodeResponse(q, {
        rcode: RCODE.NOERROR,
        authoritative: false,
        answers: [{ name: q.name, type: 'A', ttl: 30, address: '192.0.2.44' }],
        authority: [],
        additional: [],
      });
      upstream.send(r, rinfo.port, rinfo.address);
    });
    server = await startServerProcess(tmp.make('dnsset-srv'), 'srv', [
      '--virtual-ip-range',
      '10.250.0.0/16',
    ]);
    const conf = tmp.make('dnsset-conf');
    writeFileSync(
      join(conf, 'settings.hcl'),
      [
        'dns_addr = "127.0.0.1:0"',
        'domain = "mesh"',
        `recursors = ["127.0.0.1:${upstream.address().port}"]`,
        'dns_config {',
        '  node_ttl = "10s"',
        '  service_ttl = { "*" = "3s" }',
        '}',
      ].join('\n'),
    );
    writeFileSync(
      join(conf, 'web.hcl'),
      'service {\n  name = "web"\n  port = 8080\n  connect { sidecar_service {} }\n}\n',
    );
    agent = await startTrellis(
      agentArgs(server.address, 'dns-node', tmp.make('dnsset-data'), conf),
    );
    const m = /trellis agent dns on ([\d.]+:\d+)/.exec(agent.output());
    expect(m, agent.output()).to.not.equal(null);
    resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([m![1]!]);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    upstream?.close();
    tmp.removeAll();
  });

  it('answers its own domain with the configured TTLs', async () => {
    const a = await eventually(
      () => resolver.resolve4('web.service.mesh', { ttl: true }).catch(() => undefined),
      30_000,
      300,
    );
    expect(a).to.deep.equal([{ address: '127.0.0.1', ttl: 3 }]);
    expect(await resolver.resolve4('dns-node.node.mesh', { ttl: true })).to.deep.equal([
      { address: '127.0.0.1', ttl: 10 },
    ]);
  });

  it('takes virtual IPs from the server range', async () => {
    const vip = await eventually(
      () => resolver.resolve4('web.virtual.mesh').catch(() => undefined),
      30_000,
      300,
    );
    expect(vip[0]).to.match(/^10\.250\.0\.\d+$/);
  });

  it('forwards other names (consul. included) to the recursor', async () => {
    expect(await resolver.resolve4('example.org')).to.deep.equal(['192.0.2.44']);
    expect(await resolver.resolve4('web.service.consul')).to.deep.equal(['192.0.2.44']);
  });

  it('refuses bad settings at start: file:line:column, or one line for a flag', async () => {
    const conf = tmp.make('dnsset-bad');
    writeFileSync(join(conf, 'bad.hcl'), 'dns_addr = "127.0.0.1:0"\nrecursors = ["dns.google"]\n');
    const bad = await startTrellis(
      agentArgs(server.address, 'bad-node', tmp.make('dnsset-bad-data'), conf),
    ).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(bad).to.include(
      `${join(conf, 'bad.hcl')}:2:14: recursors[0]: invalid recursor "dns.google"`,
    );
    const flag = await startServerProcess(tmp.make('dnsset-bad-srv'), 'srv2', [
      '--virtual-ip-range',
      '10.0.0.0/2',
    ]).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(flag).to.include(
      'Error: --virtual-ip-range: virtual IP range "10.0.0.0/2": use an IPv4 CIDR from /4 to /30',
    );
  });
});
