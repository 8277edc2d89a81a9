/** Which of the host's DNS servers the agent forwards to when `recursors` is not set. */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostResolvers, nameservers } from '../../../src/agent/dns/host-resolvers.js';

describe('hostResolvers', () => {
  let dir: string;
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const own = { host: '127.0.0.1', port: 8600 };

  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'trellis-hostres-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the nameserver lines in order, ignoring comments and other options', () => {
    expect(
      nameservers(
        '# x\nsearch a.b\nnameserver 10.0.0.2\n  nameserver   fd00::53 \noptions ndots:2\n;nameserver 9.9.9.9\n',
      ),
    ).to.deep.equal(['10.0.0.2', 'fd00::53']);
  });

  it('uses the servers of resolv.conf, each once, on port 53', () => {
    const resolvConf = file(
      'resolv.conf',
      'nameserver 10.0.0.2\nnameserver fd00::53\nnameserver 10.0.0.2\n',
    );
    const r = hostResolvers({ resolvConf, own });
    expect(r.recursors).to.deep.equal([
      { host: '10.0.0.2', port: 53 },
      { host: 'fd00::53', port: 53 },
    ]);
    expect(r.sources).to.deep.equal([resolvConf]);
  });

  it("replaces systemd-resolved's stub with resolved's own upstreams", () => {
    const resolvConf = file('resolv.conf', 'nameserver 127.0.0.53\noptions edns0 trust-ad\n');
    const resolvedUpstreamConf = file(
      'upstream.conf',
      'nameserver 192.0.2.1\nnameserver 192.0.2.2\n',
    );
    const r = hostResolvers({ resolvConf, resolvedUpstreamConf, own });
    expect(r.recursors.map((x) => x.host)).to.deep.equal(['192.0.2.1', '192.0.2.2']);
    expect(r.sources).to.deep.equal([resolvConf, resolvedUpstreamConf]);
  });

  it("without resolved's upstream list: nothing, and says why", () => {
    const resolvConf = file('resolv.conf', 'nameserver 127.0.0.53\n');
    const r = hostResolvers({ resolvConf, resolvedUpstreamConf: join(dir, 'missing'), own });
    expect(r.recursors).to.deep.equal([]);
    expect(r.skipped[0]?.reason).to.contain('cannot be read');
  });

  it("never forwards to the agent's own DNS (a loop), also when it listens on every address", () => {
    const resolvConf = file(
      'resolv.conf',
      'nameserver 127.0.0.1\nnameserver 10.1.1.1\nnameserver 10.0.0.2\n',
    );
    const same = hostResolvers({ resolvConf, own: { host: '127.0.0.1', port: 53 } });
    expect(same.recursors.map((x) => x.host)).to.deep.equal(['10.1.1.1', '10.0.0.2']);
    expect(same.skipped).to.deep.equal([
      { server: '127.0.0.1', reason: "this agent's own DNS (a loop)" },
    ]);
    const wildcard = hostResolvers({
      resolvConf,
      own: { host: '0.0.0.0', port: 53 },
      localAddresses: ['127.0.0.1', '10.1.1.1'],
    });
    expect(wildcard.recursors.map((x) => x.host)).to.deep.equal(['10.0.0.2']);
    // On another port there is no loop: port 53 is what resolv.conf servers are asked on.
    expect(hostResolvers({ resolvConf, own }).recursors).to.have.length(3);
  });

  it('skips a zone-scoped IPv6 server and an unreadable file', () => {
    const resolvConf = file('resolv.conf', 'nameserver fe80::1%eth0\n');
    expect(hostResolvers({ resolvConf, own }).recursors).to.deep.equal([]);
    const none = hostResolvers({ resolvConf: join(dir, 'nope'), own });
    expect(none.recursors).to.deep.equal([]);
    expect(none.sources).to.deep.equal([]);
  });
});
