/**
 * An agent with no `recursors` forwards names outside the mesh domain to the host's own DNS
 * servers, read from resolv.conf (here a file of the test's, through dns_config.resolv_conf),
 * so an app whose port-53 queries are captured keeps resolving ordinary names. In a test
 * namespace: a real upstream resolver on 127.0.0.2:53, a server and an agent, and dig.
 * A resolv.conf that names the agent's own DNS is not forwarded to (a loop): the agent warns
 * and refuses such names.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createTestNs, deleteTestNs, inNs, netnsSkipReason, tryInNs } from '../helpers/netns.js';
import {
  eventually,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const WIRE = resolve('dist/src/agent/dns/wire.js');

/** A resolver answering every A query with 192.0.2.7, on udp 127.0.0.2:53 in the namespace. */
const UPSTREAM = `
import dgram from 'node:dgram';
import { encodeResponse, parseQuery, RCODE } from ${JSON.stringify(WIRE)};
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  const q = parseQuery(msg);
  const r = encodeResponse(q, {
    rcode: RCODE.NOERROR, authoritative: false,
    answers: q.qtype === 1 ? [{ name: q.name, type: 'A', ttl: 30, address: '192.0.2.7' }] : [],
    authority: [], additional: [],
  });
  sock.send(r, rinfo.port, rinfo.address);
});
sock.bind(53, '127.0.0.2', () => process.stdout.write('ready\\n'));
`;

describe("agent DNS forwards to the host's resolvers by default (test namespace)", function () {
  this.timeout(120_000);
  const skip = netnsSkipReason(['dig']);
  const tmp = tempDirs();
  let ns = '';
  let upstream: ChildProcess | undefined;
  let server: TrellisProcess | undefined;
  const agents: TrellisProcess[] = [];

  before(async function () {
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    ns = createTestNs('10.99.0.1');
    const dir = tmp.make('dnshost');
    writeFileSync(join(dir, 'upstream.mjs'), UPSTREAM);
    upstream = spawn('ip', ['netns', 'exec', ns, process.execPath, join(dir, 'upstream.mjs')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((res, rej) => {
      upstream!.stdout!.once('data', () => res());
      upstream!.once('exit', (code) => rej(new Error(`upstream exited ${code}`)));
    });
    server = await startTrellis(
      [
        'server',
        '--data-dir',
        tmp.make('dnshost-srv'),
        '--bind',
        '127.0.0.1:0',
        '--node',
        'srv',
        '--acl-default-policy',
        'allow',
      ],
      { netns: ns, timeoutMs: 60_000 },
    );
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    if (upstream && upstream.exitCode === null) upstream.kill('SIGKILL');
    if (ns) deleteTestNs(ns);
    tmp.removeAll();
  });

  /** An agent in the namespace whose config dir holds `settings`, DNS on `dnsAddr`. */
  async function agent(node: string, dnsAddr: string, settings: string[]): Promise<TrellisProcess> {
    const conf = tmp.make(`dnshost-${node}`);
    writeFileSync(join(conf, 'settings.hcl'), settings.join('\n'));
    const a = await startTrellis(
      [
        'agent',
        '--server',
        server!.address,
        '--node',
        node,
        '--data-dir',
        tmp.make(`dnshost-${node}-data`),
        '--config-dir',
        conf,
        '--bind',
        '127.0.0.1:0',
        '--dns-bind',
        dnsAddr,
      ],
      { netns: ns, timeoutMs: 60_000 },
    );
    agents.push(a);
    return a;
  }

  const dig = (port: number, name: string): string =>
    inNs(ns, ['dig', '@127.0.0.1', '-p', String(port), name, 'A', '+tries=1', '+time=3']);

  it('without recursors: an outside name is answered by the resolver in resolv.conf', async () => {
    const resolvConf = join(tmp.make('dnshost-rc'), 'resolv.conf');
    writeFileSync(
      resolvConf,
      '# written by the test\nsearch example.internal\nnameserver 127.0.0.2\n',
    );
    const a = await agent('dh1', '127.0.0.1:8600', [
      `dns_config {\n  resolv_conf = "${resolvConf}"\n}`,
    ]);
    let last = '';
    const out = await eventually(async () => {
      const r = tryInNs(ns, ['dig', '@127.0.0.1', '-p', '8600', 'www.example.test', '+tries=1']);
      last = r.stdout + r.stderr;
      return /status: NOERROR/.test(r.stdout) && r.stdout;
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${last}\n${a.output()}`);
    });
    expect(out).to.match(/^www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.7$/m);
    // Mesh names are still the agent's own.
    expect(dig(8600, 'consul.service.consul')).to.match(/status: (NOERROR|NXDOMAIN)/);
    expect(a.output()).to.not.match(/no usable DNS server/);
  });

  it('recursors = [] turns forwarding off: an outside name is REFUSED', async () => {
    await agent('dh2', '127.0.0.1:8601', ['recursors = []']);
    const out = await eventually(async () => {
      const r = tryInNs(ns, ['dig', '@127.0.0.1', '-p', '8601', 'www.example.test', '+tries=1']);
      return /status: /.test(r.stdout) && r.stdout;
    }, 30_000);
    expect(out).to.match(/status: REFUSED/);
  });

  it("a resolv.conf naming the agent's own DNS is not forwarded to: a warning, and REFUSED", async () => {
    const resolvConf = join(tmp.make('dnshost-loop'), 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
    const a = await agent('dh3', '127.0.0.1:53', [
      `dns_config {\n  resolv_conf = "${resolvConf}"\n}`,
    ]);
    const out = await eventually(async () => {
      const r = tryInNs(ns, ['dig', '@127.0.0.1', '-p', '53', 'www.example.test', '+tries=1']);
      return /status: /.test(r.stdout) && r.stdout;
    }, 30_000);
    expect(out).to.match(/status: REFUSED/);
    expect(a.output()).to.contain('no usable DNS server of the host found');
  });
});
