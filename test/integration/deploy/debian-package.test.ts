/**
 * The Debian package (scripts/package-deb.mjs): what `dpkg-deb` shows of it, and dpkg really
 * installing, running, upgrading and purging it in a scratch root (test/helpers/scratch-root.ts:
 * an overlay of this machine's `/` in private namespaces; the host is never written). Maintainer
 * scripts are checked with and without systemd: where /run/systemd/system exists, a recording
 * `systemctl` stands in for systemd, which does not run here.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { removeDir, tempDir } from '../../helpers/trellis-process.js';
import { debPackage } from '../../helpers/deb-package.js';
import { leftovers, runInScratchRoot } from '../../helpers/scratch-root.js';

const REPO = resolve('.');
const VERSION = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
).version;
const OLD_VERSION = '0.0.1';
const IMPORT_ALL = join(REPO, 'test/fixtures/deb/import-all.mjs');
const UNITS = [
  'trellis-server.service',
  'trellis-agent.service',
  'trellis-proxy.service',
  'trellis-app@.service',
];

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount namespaces, overlayfs, chroot)';
  for (const tool of ['dpkg-deb', 'unshare', 'chroot']) {
    if (spawnSync(tool, ['--version']).error) return `${tool} is missing`;
  }
  return undefined;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `dpkg-deb -c` as path -> "mode owner". */
function contents(deb: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of sh('dpkg-deb', ['-c', deb]).trim().split('\n')) {
    const [mode, owner, , , , path] = line.split(/\s+/);
    map.set(path!.replace(/^\.\//, '/'), `${mode} ${owner}`);
  }
  return map;
}

describe('Debian package', function () {
  this.timeout(600_000);
  let dir: string;
  let deb: string;
  let oldDeb: string;

  before(function () {
    const reason = skipReason();
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    dir = tempDir('deb');
    deb = debPackage(VERSION);
    oldDeb = debPackage(OLD_VERSION);
  });
  after(() => {
    if (dir) removeDir(dir);
  });

  it('dpkg-deb -f shows the promised control fields', () => {
    const fields = sh('dpkg-deb', ['-f', deb]);
    expect(fields).to.match(/^Package: trellis$/m);
    expect(fields).to.match(new RegExp(`^Version: ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
    expect(fields).to.match(/^Architecture: all$/m);
    expect(fields).to.match(/^Depends: nodejs \(>= 20\), nftables, adduser$/m);
    expect(fields).to.match(/^Maintainer: .+ <.+@.+>$/m);
    expect(fields).to.match(/^Installed-Size: [1-9][0-9]*$/m);
    expect(fields).to.match(/^Description: .+\n .+/m);
    expect(sh('dpkg-deb', ['-I', deb, 'conffiles']).trim().split('\n')).to.have.members([
      '/etc/default/trellis-agent',
      '/etc/default/trellis-proxy',
      '/etc/default/trellis-server',
    ]);
    const info = sh('dpkg-deb', ['-I', deb]);
    for (const script of ['postinst', 'prerm', 'postrm'])
      expect(info).to.match(new RegExp(`\\b${script}\\b`));
  });

  it('dpkg-deb -c lists the promised files with their modes, owned by root', () => {
    const files = contents(deb);
    const expectEntry = (path: string, mode: string): void => {
      expect(files.get(path), path).to.equal(`${mode} root/root`);
    };
    expectEntry('/usr/bin/trellis', '-rwxr-xr-x');
    expectEntry('/usr/lib/trellis/package.json', '-rw-r--r--');
    expectEntry('/usr/lib/trellis/dist/src/bin/trellis.js', '-rw-r--r--');
    for (const unit of UNITS) expectEntry(`/lib/systemd/system/${unit}`, '-rw-r--r--');
    expectEntry('/etc/default/trellis-server', '-rw-r--r--');
    expectEntry('/etc/default/trellis-agent', '-rw-r--r--');
    expectEntry('/etc/default/trellis-proxy', '-rw-r--r--');
    expectEntry('/etc/trellis.d/', 'drwxr-xr-x');
    expectEntry('/usr/share/doc/trellis/README.md', '-rw-r--r--');
    expectEntry('/usr/share/doc/trellis/docs/deploy.md', '-rw-r--r--');
    expectEntry('/usr/share/doc/trellis/copyright', '-rw-r--r--');
    expect(
      files.has('/var/lib/trellis/'),
      'the state dir is made by postinst, not shipped',
    ).to.equal(false);
    for (const [path, modeOwner] of files) {
      expect(modeOwner.split(' ')[1], path).to.equal('root/root');
      expect(
        modeOwner[0] === 'd'
          ? modeOwner.startsWith('drwxr-xr-x')
          : /^-rw[-x]r-[-x]r-[-x] /.test(modeOwner),
        path,
      ).to.equal(true);
    }
    const paths = [...files.keys()];
    // Compiled JavaScript only: no tests, benchmarks, source maps or TypeScript.
    expect(
      paths.filter(
        (p) =>
          p.startsWith('/usr/lib/trellis/dist/') &&
          p !== '/usr/lib/trellis/dist/' &&
          !p.startsWith('/usr/lib/trellis/dist/src/'),
      ),
    ).to.deep.equal([]);
    expect(paths.filter((p) => /^\/usr\/lib\/trellis\/dist\/.*\.(map|ts)$/.test(p))).to.deep.equal(
      [],
    );

    // node_modules holds exactly the production packages of package-lock.json.
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '') continue;
      const manifest = `/usr/lib/trellis/${path}/package.json`;
      expect(files.has(manifest), `${manifest} (${entry.dev ? 'dev' : 'production'})`).to.equal(
        !entry.dev,
      );
    }
  });

  it('installs into a scratch root, runs, installs again harmlessly, and purge leaves nothing', () => {
    const r = runInScratchRoot(
      dir,
      [deb, IMPORT_ALL],
      `
run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
echo "@@version $(run trellis --version)"
echo "@@user $(run getent passwd trellis)"
echo "@@state $(run stat -c '%a %U %G' /var/lib/trellis)"
echo "@@confdir $(run stat -c '%a %U %G' /etc/trellis.d)"
# The shipped units, unmodified, against the installed /usr/bin/trellis.
run systemd-analyze verify --man=no /lib/systemd/system/trellis-server.service /lib/systemd/system/trellis-agent.service /lib/systemd/system/trellis-proxy.service 2>&1 | sed 's/^/@@verify /'
# Every module of the package loads with the shipped node_modules (lazily imported ones too).
run node /mnt/import-all.mjs
# The installed server really runs as the trellis user and answers its API.
run ip link set lo up
chroot "$R" /usr/bin/env -i $CHROOT_ENV setpriv --reuid trellis --regid trellis --init-groups trellis server --data-dir /var/lib/trellis/server --bind 127.0.0.1:8500 --https-bind off --log-level warn &
server=$!
leader=''
for _ in $(seq 1 120); do
  leader=$(run curl -fsS http://127.0.0.1:8500/v1/status/leader 2>/dev/null) && break
  sleep 0.5
done
echo "@@leader $leader"
kill "$server"; wait "$server" || true
echo "@@serverstate $(run sh -c 'ls /var/lib/trellis/server | head -1')"
run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
echo "@@again $(run dpkg-query -W -f '\${Version} \${db:Status-Abbrev}' trellis)"
echo "@@version2 $(run trellis --version)"
run dpkg --purge trellis </dev/null
echo "@@purged $(run getent passwd trellis || echo no-user) $(run test -e /var/lib/trellis && echo state-left || echo no-state)"
`,
    );
    const out = r.output;
    expect(r.code, out).to.equal(0);
    expect(out).to.contain(`@@version ${VERSION}\n`);
    expect(out).to.match(
      /^@@user trellis:x:\d+:\d+:[^:]*:\/var\/lib\/trellis:\/usr\/sbin\/nologin$/m,
    );
    expect(out).to.contain('@@state 700 trellis trellis\n');
    expect(out).to.contain('@@confdir 755 root root\n');
    expect(out, 'systemd-analyze verify printed warnings').not.to.contain('@@verify');
    expect(out).to.match(/^@@imported [1-9]\d+$/m);
    expect(out).to.match(/^@@leader "127\.0\.0\.1:\d+"$/m);
    expect(out).to.match(/^@@serverstate \S+$/m);
    expect(out).to.contain(`@@again ${VERSION} ii \n`);
    expect(out).to.contain(`@@version2 ${VERSION}\n`);
    expect(out).to.contain('@@purged no-user no-state\n');
    expect(leftovers(r.upper, 'trellis')).to.deep.equal([]);
  });

  it('upgrades from an older version, keeping the edited conffile and the state', () => {
    const r = runInScratchRoot(
      dir,
      [oldDeb, deb],
      `
run dpkg -i /mnt/trellis_${OLD_VERSION}_all.deb </dev/null
echo "@@old $(run trellis --version)"
run sh -c 'echo "TRELLIS_AGENT_ARGS=\\"--node edited\\"" > /etc/default/trellis-agent'
run setpriv --reuid trellis --regid trellis --init-groups sh -c 'mkdir /var/lib/trellis/agent && echo kept > /var/lib/trellis/agent/marker'
run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
echo "@@new $(run trellis --version) $(run dpkg-query -W -f '\${Version}' trellis)"
echo "@@conffile $(run cat /etc/default/trellis-agent)"
echo "@@marker $(run cat /var/lib/trellis/agent/marker)"
echo "@@users $(run getent passwd trellis | wc -l)"
run dpkg --purge trellis </dev/null
`,
    );
    const out = r.output;
    expect(r.code, out).to.equal(0);
    expect(out).to.contain(`@@old ${OLD_VERSION}\n`);
    expect(out).to.contain(`@@new ${VERSION} ${VERSION}\n`);
    expect(out).to.contain('@@conffile TRELLIS_AGENT_ARGS="--node edited"\n');
    expect(out).to.contain('@@marker kept\n');
    expect(out).to.contain('@@users 1\n');
    expect(leftovers(r.upper, 'trellis')).to.deep.equal([]);
  });

  it('remove without purge keeps configuration, state and user, and the leftover check sees them', () => {
    const r = runInScratchRoot(
      dir,
      [deb],
      `
run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
run dpkg --remove trellis </dev/null
echo "@@after $(run test -e /usr/bin/trellis && echo bin || echo no-bin) $(run getent passwd trellis | cut -d: -f1) $(run dpkg-query -W -f '\${db:Status-Abbrev}' trellis)"
`,
    );
    expect(r.code, r.output).to.equal(0);
    expect(r.output).to.contain('@@after no-bin trellis rc \n');
    const left = leftovers(r.upper, 'trellis');
    expect(left).to.include.members([
      '/var/lib/trellis/: new directory',
      '/etc/default/trellis-agent: new file',
      '/etc/default/trellis-proxy: new file',
      '/etc/default/trellis-server: new file',
      '/etc/passwd: changed',
      'dpkg still lists trellis',
    ]);
    expect(left.filter((l) => l.startsWith('/usr/lib/trellis'))).to.deep.equal([]);
  });

  it('with systemd running: reload on install, try-restart on upgrade only, stop on remove, never start', () => {
    // /run/systemd/system is what the scripts test for; systemctl records its arguments.
    const r = runInScratchRoot(
      dir,
      [oldDeb, deb],
      `
mkdir -p "$R/run/systemd/system"
mount -t tmpfs -o mode=755 tmpfs "$R/usr/local/sbin"
printf '#!/bin/sh\\necho "$*" >> /run/systemctl.log\\n' > "$R/usr/local/sbin/systemctl"
chmod 755 "$R/usr/local/sbin/systemctl"
step() { echo "== $1" >> "$R/run/systemctl.log"; }
step install; run dpkg -i /mnt/trellis_${OLD_VERSION}_all.deb </dev/null
step upgrade; run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
step same; run dpkg -i /mnt/trellis_${VERSION}_all.deb </dev/null
step remove; run dpkg --remove trellis </dev/null
step purge; run dpkg --purge trellis </dev/null
sed 's/^/@@ /' "$R/run/systemctl.log"
umount "$R/usr/local/sbin"
`,
    );
    expect(r.code, r.output).to.equal(0);
    const log = r.output
      .split('\n')
      .filter((l) => l.startsWith('@@ '))
      .map((l) => l.slice(3));
    expect(log).to.deep.equal([
      '== install',
      'daemon-reload',
      '== upgrade',
      'daemon-reload',
      'try-reload-or-restart trellis-proxy.service',
      'try-restart trellis-server.service',
      'try-restart trellis-agent.service',
      '== same',
      'daemon-reload',
      '== remove',
      'stop trellis-app@*.service',
      'stop trellis-proxy.service',
      'stop trellis-agent.service trellis-server.service',
      'daemon-reload',
      '== purge',
      'daemon-reload',
    ]);
  });
});
