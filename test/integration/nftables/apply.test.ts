/**
 * Applies the `inet trellis` table with the real nft, inside a throwaway network namespace
 * (`trellis-t-<random>`), never in the host's. Needs root, `ip` and `nft`; skipped otherwise.
 */
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  apply,
  applyText,
  check,
  listing,
  NftApplier,
  remove,
  status,
  type NftOptions,
} from '../../../src/agent/nftables/nft.js';
import {
  removeFile,
  renderRuleset,
  type RedirectPlan,
} from '../../../src/agent/nftables/ruleset.js';

function has(bin: string): boolean {
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    try {
      execFileSync(bin, ['-V'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and nft)';
  if (!has('ip')) return 'needs the ip command (iproute2)';
  if (!has('nft')) return 'needs the nft command (nftables)';
  return undefined;
}

function inNs(ns: string, args: string[]): string {
  if (!ns.startsWith('trellis-t-'))
    throw new Error(`refusing to run outside a test namespace: ${ns}`);
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 10_000 });
}

/** Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on hybrid hosts). */
function cgroup2Root(): string | undefined {
  const line = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[2] === 'cgroup2');
  return line?.split(' ')[1];
}

function createNs(): string {
  const ns = `trellis-t-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
  try {
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    deleteNs(ns);
    throw e;
  }
  return ns;
}

function deleteNs(ns: string): void {
  if (!ns.startsWith('trellis-t-')) return;
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone
  }
}

function plan(): RedirectPlan {
  return {
    proxyUid: 0,
    outbound: [
      {
        uid: 65534,
        targets: [
          { address: '240.0.0.5', port: 80, toPort: 15001 },
          { address: 'fd00::5', port: 80, toPort: 15001 },
        ],
      },
    ],
    inbound: [{ port: 8080, toPort: 20000 }],
    exclude: {
      inboundPorts: [8500],
      outboundPorts: [8500],
      outboundCidrs: ['169.254.0.0/16'],
      uids: [],
    },
    dns: { port: 8600 },
  };
}

describe('nftables apply (real nft in a network namespace)', function () {
  let ns = '';
  let opts: NftOptions = {};

  before(function () {
    const reason = skipReason();
    if (reason) {
      console.log(`    skipping nftables integration tests: ${reason}`);
      this.skip();
    }
  });

  beforeEach(function () {
    ns = createNs();
    opts = { netns: ns };
  });

  afterEach(function () {
    if (ns) deleteNs(ns);
    ns = '';
  });

  it('applies the table: maps and chains are listed', async () => {
    const { listing: l } = await apply(plan(), opts);
    const live = inNs(ns, ['nft', 'list', 'table', 'inet', 'trellis']);
    expect(live).to.equal(l);
    for (const s of [
      'map out4_u65534',
      'map out6_u65534',
      'map in_ports',
      '240.0.0.5 . 80 : 15001',
      'fd00::5 . 80 : 15001',
      '8080 : 20000',
      'chain output',
      'chain prerouting',
      'redirect to :ip daddr . tcp dport map @out4_u65534',
      'redirect to :tcp dport map @in_ports',
      'tcp dport { 22, 8500 } return',
    ])
      expect(live).to.contain(s);
  });

  it('is idempotent: applying the same plan twice gives the identical listing', async () => {
    const first = await apply(plan(), opts);
    const second = await apply(plan(), opts);
    expect(second.listing).to.equal(first.listing);
    expect(inNs(ns, ['nft', 'list', 'tables'])).to.equal('table inet trellis\n');
  });

  it('check validates without applying', async () => {
    await check(plan(), opts);
    expect(await listing(opts)).to.equal(undefined);
  });

  it('a file nft refuses changes nothing: the previous ruleset stays in force', async () => {
    const before = (await apply(plan(), opts)).listing;
    // A change only nft can detect: a rule using a map that does not exist. The file also deletes
    // the table first, so if the transaction were not atomic the table would be gone.
    const other = plan();
    other.inbound = [{ port: 9090, toPort: 20001 }];
    const broken =
      removeFile() +
      renderRuleset(other).replace(
        '\t\tiifname "lo" return\n',
        '\t\tiifname "lo" return\n\t\tmeta l4proto tcp redirect to : tcp dport map @no_such_map\n',
      );
    let err: Error | undefined;
    try {
      await applyText(broken, opts);
    } catch (e) {
      err = e as Error;
    }
    expect(err, 'applyText should have thrown').to.be.instanceOf(Error);
    expect(err?.message).to.match(/nft -f failed/);
    expect(err?.message).to.contain('no_such_map');
    expect(await listing(opts)).to.equal(before);
  });

  it('remove deletes the table (and succeeds when it is already gone)', async () => {
    await apply(plan(), opts);
    await remove(opts);
    expect(inNs(ns, ['nft', 'list', 'tables'])).not.to.contain('inet trellis');
    await remove(opts);
    expect(await listing(opts)).to.equal(undefined);
  });

  it('status: in-sync after apply, drifted after a flush, absent after remove', async () => {
    const applier = new NftApplier(opts);
    expect((await applier.status(plan())).state).to.equal('absent');
    await applier.apply(plan());
    expect(await applier.status(plan())).to.deep.equal({ state: 'in-sync' });
    // a different plan than the one applied is drift, too
    const other = plan();
    other.inbound = [];
    expect((await applier.status(other)).state).to.equal('drifted');

    inNs(ns, ['nft', 'flush', 'chain', 'inet', 'trellis', 'output']);
    const st = await applier.status(plan());
    expect(st.state).to.equal('drifted');
    expect(st.diff).to.contain('- meta skuid 0 return');

    // the functional form, with a persisted listing
    const recorded = applier.recordedListing;
    expect((await status(plan(), opts, recorded)).state).to.equal('drifted');
    await applier.apply(plan());
    expect((await status(plan(), opts, recorded)).state).to.equal('in-sync');

    await applier.remove();
    expect(await applier.status(plan())).to.deep.equal({ state: 'absent' });
  });

  it('reports a missing nft binary clearly (inside the namespace)', async () => {
    let err: Error | undefined;
    try {
      await apply(plan(), { netns: ns, nftPath: '/nonexistent/nft' });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.equal('nft not found: install the nftables package');
  });

  describe('real traffic', () => {
    const children: ChildProcess[] = [];

    afterEach(() => {
      for (const c of children.splice(0)) {
        if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
          try {
            process.kill(c.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });

    const SERVER = `
      const net = require('node:net');
      const s = net.createServer((c) => { c.end('TRELLIS-MARKER\\n'); });
      s.listen(Number(process.argv[1]), process.argv[2], () => console.log('listening'));
    `;
    const CLIENT = `
      const net = require('node:net');
      const c = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
      let data = '';
      const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 1500);
      c.on('data', (d) => { data += d; });
      c.on('end', () => { clearTimeout(t); console.log('GOT ' + data.trim()); process.exit(0); });
      c.on('error', (e) => { clearTimeout(t); console.log('ERROR ' + e.code); process.exit(3); });
    `;

    /** A veth pair in the namespace, 198.18.250.1 on tv0, and 240.0.0.0/4 routed to it. */
    function vethWithVipRoute(): void {
      inNs(ns, ['ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1']);
      inNs(ns, ['ip', 'link', 'set', 'tv0', 'up']);
      inNs(ns, ['ip', 'link', 'set', 'tv1', 'up']);
      inNs(ns, ['ip', 'addr', 'add', '198.18.250.1/24', 'dev', 'tv0']);
      inNs(ns, ['ip', 'route', 'add', '240.0.0.0/4', 'dev', 'tv0']);
    }

    function startServer(port: number, host = '127.0.0.1'): Promise<void> {
      const child = spawn('ip', ['netns', 'exec', ns, 'node', '-e', SERVER, String(port), host], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('marker server did not start')), 5000);
        child.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('listening')) {
            clearTimeout(t);
            resolve();
          }
        });
        child.on('exit', (code) => {
          clearTimeout(t);
          reject(new Error(`marker server exited (${code})`));
        });
      });
    }

    function connectAs(uid: number | undefined, host: string, port: number, fromNs = ns): string {
      const node = ['node', '-e', CLIENT, host, String(port)];
      const argv =
        uid === undefined
          ? ['netns', 'exec', fromNs, ...node]
          : [
              'netns',
              'exec',
              fromNs,
              'setpriv',
              `--reuid=${uid}`,
              `--regid=${uid}`,
              '--clear-groups',
              ...node,
            ];
      try {
        return execFileSync('ip', argv, { encoding: 'utf8', timeout: 8000, cwd: '/' }).trim();
      } catch (e) {
        const out = (e as { stdout?: string }).stdout;
        return typeof out === 'string' ? out.trim() : `FAILED ${(e as Error).message}`;
      }
    }

    // the client ran and did not get the marker: timed out or was refused/unreachable
    const NOT_REACHED = /^(TIMEOUT|ERROR [A-Z]+)$/;

    it('redirects a captured uid to the local listener, and only that uid', async () => {
      vethWithVipRoute();
      await startServer(15001);

      // before any rules: nobody cannot reach the virtual IP
      expect(connectAs(65534, '240.0.0.5', 80)).to.match(NOT_REACHED);

      await apply(plan(), opts);
      expect(connectAs(65534, '240.0.0.5', 80)).to.equal('GOT TRELLIS-MARKER');
      // root (uid 0, the proxy uid here) is never captured
      expect(connectAs(undefined, '240.0.0.5', 80)).to.match(NOT_REACHED);
      // a port not in the map is not captured
      expect(connectAs(65534, '240.0.0.5', 81)).to.match(NOT_REACHED);

      await remove(opts);
      expect(connectAs(65534, '240.0.0.5', 80)).to.match(NOT_REACHED);
    });

    it('redirects every port of a virtual IP to its listener', async () => {
      vethWithVipRoute();
      await startServer(15002);
      const p = plan();
      p.outbound[0].vips = [{ address: '240.0.0.9', toPort: 15002 }];
      await apply(p, opts);
      for (const port of [80, 443, 8080])
        expect(connectAs(65534, '240.0.0.9', port)).to.equal('GOT TRELLIS-MARKER');
      // another virtual IP is not captured, nor the VIP for the proxy uid
      expect(connectAs(65534, '240.0.0.10', 80)).to.match(NOT_REACHED);
      expect(connectAs(undefined, '240.0.0.9', 80)).to.match(NOT_REACHED);
    });

    it('redirects connections of processes in a capture cgroup', async function () {
      const root = cgroup2Root();
      if (!root) {
        console.log('      skipped: no cgroup2 hierarchy is mounted on this host');
        this.skip();
      }
      const cg = `${ns}-cg`;
      const dir = mkdtempSync(join(tmpdir(), 'trellis-test-nftcg-'));
      // nft resolves `socket cgroupv2` paths below /sys/fs/cgroup, and `ip netns exec` mounts a
      // fresh /sys: the wrapper mounts the (one) cgroup2 hierarchy there first. On a host with
      // cgroup v2 at /sys/fs/cgroup the agent needs no such thing.
      const wrapper = join(dir, 'nft');
      writeFileSync(
        wrapper,
        '#!/bin/sh\nmount -t cgroup2 none /sys/fs/cgroup 2>/dev/null\nexec nft "$@"\n',
        { mode: 0o755 },
      );
      mkdirSync(`${root}/${cg}`);
      try {
        vethWithVipRoute();
        await startServer(15003);
        await apply(
          {
            // Not root: the client below runs as root, and the proxy uid is never captured.
            proxyUid: 999,
            outbound: [
              { cgroup: cg, targets: [], vips: [{ address: '240.0.0.9', toPort: 15003 }] },
            ],
            inbound: [],
            exclude: { inboundPorts: [], outboundPorts: [], outboundCidrs: [], uids: [] },
          },
          { ...opts, nftPath: wrapper },
        );
        // The client joins the cgroup, then enters the namespace: captured. Outside it: not.
        const script = `echo $$ > ${root}/${cg}/cgroup.procs && exec ip netns exec ${ns} node -e "$0" 240.0.0.9 80`;
        let inCgroup: string;
        try {
          inCgroup = execFileSync('sh', ['-c', script, CLIENT], {
            encoding: 'utf8',
            timeout: 8000,
            cwd: '/',
          }).trim();
        } catch (e) {
          const err = e as { stdout?: string; stderr?: string };
          inCgroup = `FAILED ${err.stdout ?? ''} ${err.stderr ?? ''}`.trim();
        }
        expect(inCgroup).to.equal('GOT TRELLIS-MARKER');
        expect(connectAs(65534, '240.0.0.9', 80)).to.match(NOT_REACHED);
        expect(connectAs(undefined, '240.0.0.9', 80)).to.match(NOT_REACHED);
      } finally {
        rmdirSync(`${root}/${cg}`);
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('redirects IPv6 destinations of a captured uid to [::1]', async () => {
      inNs(ns, ['ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1']);
      inNs(ns, ['ip', 'link', 'set', 'tv0', 'up']);
      inNs(ns, ['ip', 'link', 'set', 'tv1', 'up']);
      inNs(ns, ['ip', '-6', 'route', 'add', 'fd00::/64', 'dev', 'tv0']);
      await startServer(15001, '::1');

      await apply(plan(), opts);
      expect(connectAs(65534, 'fd00::5', 80)).to.equal('GOT TRELLIS-MARKER');
      expect(connectAs(undefined, 'fd00::5', 80)).to.match(NOT_REACHED);
    });

    it('sends DNS queries of a captured uid to the agent DNS port', async () => {
      inNs(ns, ['ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1']);
      inNs(ns, ['ip', 'link', 'set', 'tv0', 'up']);
      inNs(ns, ['ip', 'link', 'set', 'tv1', 'up']);
      inNs(ns, ['ip', 'addr', 'add', '198.18.250.1/24', 'dev', 'tv0']);
      const UDP_SERVER = `
        const s = require('node:dgram').createSocket('udp4');
        s.on('message', (m, r) => s.send('DNS-MARKER', r.port, r.address));
        s.bind(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));
      `;
      const UDP_CLIENT = `
        const c = require('node:dgram').createSocket('udp4');
        const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 1500);
        c.on('message', (m) => { clearTimeout(t); console.log('GOT ' + m); process.exit(0); });
        c.send('query', 53, process.argv[1]);
      `;
      const child = spawn('ip', ['netns', 'exec', ns, 'node', '-e', UDP_SERVER, '8600'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('udp server did not start')), 5000);
        child.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('listening')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const query = (uid: number | undefined): string => {
        const node = ['node', '-e', UDP_CLIENT, '198.18.250.53'];
        const priv =
          uid === undefined
            ? []
            : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
        try {
          return execFileSync('ip', ['netns', 'exec', ns, ...priv, ...node], {
            encoding: 'utf8',
            timeout: 8000,
            cwd: '/',
          }).trim();
        } catch (e) {
          return String((e as { stdout?: string }).stdout ?? '').trim();
        }
      };
      await apply(plan(), opts);
      expect(query(65534)).to.equal('GOT DNS-MARKER');
      expect(query(undefined)).to.equal('TIMEOUT');
    });

    it('redirects inbound connections from the network to the proxy port', async () => {
      const peer = createNs();
      try {
        inNs(ns, ['ip', 'link', 'add', 'tv2', 'type', 'veth', 'peer', 'name', 'tv3']);
        inNs(ns, ['ip', 'link', 'set', 'tv3', 'netns', peer]);
        inNs(ns, ['ip', 'addr', 'add', '198.18.251.1/24', 'dev', 'tv2']);
        inNs(ns, ['ip', 'link', 'set', 'tv2', 'up']);
        inNs(peer, ['ip', 'addr', 'add', '198.18.251.2/24', 'dev', 'tv3']);
        inNs(peer, ['ip', 'link', 'set', 'tv3', 'up']);
        await startServer(20000, '0.0.0.0');

        // before the rules: nothing listens on 8080
        expect(connectAs(undefined, '198.18.251.1', 8080, peer)).to.match(NOT_REACHED);
        await apply(plan(), opts);
        expect(connectAs(undefined, '198.18.251.1', 8080, peer)).to.equal('GOT TRELLIS-MARKER');
        // a port not in in_ports is not redirected
        expect(connectAs(undefined, '198.18.251.1', 8081, peer)).to.match(NOT_REACHED);
        // local connections to 8080 are not the prerouting chain's business
        expect(connectAs(undefined, '198.18.251.1', 8080)).to.match(NOT_REACHED);
      } finally {
        deleteNs(peer);
      }
    });
  });
});

describe('nftables apply without nft', () => {
  it('says how to fix a missing nft binary', async () => {
    let err: Error | undefined;
    try {
      // a path that does not exist: nothing runs, no ruleset is touched
      await apply(
        {
          proxyUid: 0,
          outbound: [],
          inbound: [],
          exclude: { inboundPorts: [], outboundPorts: [], outboundCidrs: [], uids: [] },
        },
        { nftPath: '/nonexistent/trellis-test/nft' },
      );
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.equal('nft not found: install the nftables package');
  });
});
