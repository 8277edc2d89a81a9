/**
 * The unit files in systemd/ as systemd reads them: `systemd-analyze verify` on each, failing on
 * any warning (systemd drops a bad line with a warning and still exits 0). verify also checks
 * that ExecStart's program exists, and /usr/bin/trellis exists only where the package is
 * installed, so each unit is verified as a copy whose ExecStart names a wrapper in a temporary
 * directory that runs this machine's node on this checkout's trellis.js (the app template: an
 * instance, trellis-app@web.service, with a stand-in program). The shipped files themselves are
 * verified where the package installed them, in test/integration/deploy/debian-package.test.ts.
 * The exposure scores of `systemd-analyze security` must be the ones docs/deploy.md records.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { TRELLIS_BIN, removeDir, tempDir } from '../helpers/trellis-process.js';

const UNIT_DIR = resolve('systemd');
const DEPLOY_DOC = resolve('docs/deploy.md');

function verify(file: string): { code: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** The exposure level `systemd-analyze security` gives a unit file (no systemd needed). */
function exposure(file: string): string {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], {
    encoding: 'utf8',
  });
  if (r.error) throw r.error;
  const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(`${r.stdout}${r.stderr}`);
  if (!m) throw new Error(`no exposure level in: ${r.stdout}${r.stderr}`);
  return m[1]!;
}

/** The values of a key in the [Service] section, in order (a repeated key gives several). */
function serviceValues(text: string, key: string): string[] {
  const section = text.split(/^\[/m).find((s) => s.startsWith('Service]')) ?? '';
  return section
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/** The Environment= lines of a unit. */
function environmentLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('Environment='));
}

describe('systemd units', function () {
  this.timeout(60_000);
  const units = readdirSync(UNIT_DIR).filter((f) => f.endsWith('.service'));
  let dir: string;
  let wrapper: string;

  before(function () {
    if (spawnSync('systemd-analyze', ['--version']).error) {
      throw new Error('systemd-analyze is missing: install the systemd package (.ci/run does)');
    }
    expect(existsSync(TRELLIS_BIN), 'run npm run build first').to.equal(true);
    dir = tempDir('units');
    // The package's /usr/bin/trellis, pointed at this checkout.
    wrapper = join(dir, 'trellis');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${TRELLIS_BIN} "$@"\n`);
    chmodSync(wrapper, 0o755);
  });
  after(() => removeDir(dir));

  it('ships the server, the agent and the example app unit', () => {
    expect(units).to.have.members([
      'trellis-server.service',
      'trellis-agent.service',
      'trellis-proxy.service',
      'trellis-app@.service',
    ]);
  });

  const commands: Record<string, string> = {
    'trellis-server.service':
      '/usr/bin/trellis server --data-dir /var/lib/trellis/server --config-dir /etc/trellis.d $TRELLIS_SERVER_ARGS',
    'trellis-agent.service':
      '/usr/bin/trellis agent --data-dir /var/lib/trellis/agent --config-dir /etc/trellis.d --data-plane-socket /run/trellis/data-plane.sock $TRELLIS_AGENT_ARGS',
    'trellis-proxy.service':
      '/usr/bin/trellis proxy --socket /run/trellis/data-plane.sock $TRELLIS_PROXY_ARGS',
  };
  for (const [unit, command] of Object.entries(commands)) {
    it(`${unit}: runs the packaged /usr/bin/trellis, and verify passes with no warning`, () => {
      const text = readFileSync(join(UNIT_DIR, unit), 'utf8');
      expect(serviceValues(text, 'ExecStart')).to.deep.equal([command]);
      const copy = join(dir, unit);
      writeFileSync(copy, text.replace('ExecStart=/usr/bin/trellis ', `ExecStart=${wrapper} `));
      const r = verify(copy);
      expect(r.output, r.output).to.equal('');
      expect(r.code).to.equal(0);
    });

    it(`${unit}: notify readiness, reload by SIGHUP, stop by SIGTERM to the main process`, () => {
      const text = readFileSync(join(UNIT_DIR, unit), 'utf8');
      expect(serviceValues(text, 'Type')).to.deep.equal(['notify']);
      expect(serviceValues(text, 'NotifyAccess')).to.deep.equal(['all']);
      expect(serviceValues(text, 'ExecReload')).to.deep.equal(['/bin/kill -HUP $MAINPID']);
      expect(serviceValues(text, 'Restart')).to.deep.equal(['on-failure']);
      expect(serviceValues(text, 'KillMode')).to.deep.equal(['mixed']);
      expect(serviceValues(text, 'User')).to.deep.equal(['trellis']);
      for (const [key, value] of [
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['NoNewPrivileges', 'yes'],
        ['StateDirectory', 'trellis'],
        ['ConfigurationDirectory', 'trellis.d'],
        ['SystemCallArchitectures', 'native'],
        ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6 AF_NETLINK'],
      ]) {
        expect(serviceValues(text, key!), key).to.deep.equal([value]);
      }
      // V8's JIT needs memory that is writable and executable.
      expect(serviceValues(text, 'MemoryDenyWriteExecute')).to.deep.equal([]);
    });
  }

  it('the agent may only administer the network; the server gets no capability', () => {
    const agent = readFileSync(join(UNIT_DIR, 'trellis-agent.service'), 'utf8');
    expect(serviceValues(agent, 'AmbientCapabilities')).to.deep.equal(['CAP_NET_ADMIN']);
    expect(serviceValues(agent, 'CapabilityBoundingSet')).to.deep.equal(['CAP_NET_ADMIN']);
    expect(serviceValues(agent, 'TimeoutStopSec')).to.deep.equal(['60']);
    const server = readFileSync(join(UNIT_DIR, 'trellis-server.service'), 'utf8');
    expect(serviceValues(server, 'AmbientCapabilities')).to.deep.equal(['']);
    expect(serviceValues(server, 'CapabilityBoundingSet')).to.deep.equal(['']);
    const proxy = readFileSync(join(UNIT_DIR, 'trellis-proxy.service'), 'utf8');
    expect(serviceValues(proxy, 'AmbientCapabilities')).to.deep.equal(['']);
    expect(serviceValues(proxy, 'CapabilityBoundingSet')).to.deep.equal(['']);
  });

  it('the agent runs its proxies in trellis-proxy.service, which outlives its restarts', () => {
    const agent = readFileSync(join(UNIT_DIR, 'trellis-agent.service'), 'utf8');
    expect(agent).to.match(/^Wants=.*\btrellis-proxy\.service\b/m);
    expect(agent).to.match(/^After=.*\btrellis-proxy\.service\b/m);
    expect(agent, 'Requires=/BindsTo= would tie the proxies to agent restarts').not.to.match(
      /^(Requires|BindsTo|PartOf)=.*trellis-proxy/m,
    );
    const proxy = readFileSync(join(UNIT_DIR, 'trellis-proxy.service'), 'utf8');
    expect(serviceValues(proxy, 'RuntimeDirectory')).to.deep.equal(['trellis']);
    expect(serviceValues(proxy, 'RuntimeDirectoryPreserve')).to.deep.equal(['yes']);
    expect(proxy).not.to.match(/^(PartOf|BindsTo)=/m);
  });

  it('trellis-app@.service: an instance verifies with no warning and runs as its own user after the agent', () => {
    const text = readFileSync(join(UNIT_DIR, 'trellis-app@.service'), 'utf8');
    expect(serviceValues(text, 'User')).to.deep.equal(['%i']);
    expect(text).to.match(/^After=trellis-agent\.service\b/m);
    expect(text).to.match(/^Wants=trellis-agent\.service$/m);
    expect(text, 'Requires= would restart the app with every agent restart').not.to.match(
      /^Requires=/m,
    );
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'web'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'web'), 0o755);
    const copy = join(dir, 'trellis-app@web.service');
    writeFileSync(copy, text.replace('ExecStart=/usr/local/bin/%i', `ExecStart=${bin}/%i`));
    const r = verify(copy);
    expect(r.output, r.output).to.equal('');
    expect(r.code).to.equal(0);
  });

  it('docs/deploy.md records the exposure score systemd-analyze security gives each unit', () => {
    const doc = readFileSync(DEPLOY_DOC, 'utf8');
    for (const unit of units) {
      const file =
        unit === 'trellis-app@.service'
          ? join(dir, 'trellis-app@web.service')
          : join(UNIT_DIR, unit);
      if (!existsSync(file)) writeFileSync(file, readFileSync(join(UNIT_DIR, unit)));
      const score = exposure(file);
      expect(doc, `${unit} scores ${score}`).to.match(
        new RegExp(`\\| \`${unit.replace('.', '\\.')}\` \\| ${score.replace('.', '\\.')} `),
      );
    }
  });

  it('a value with a space is quoted, so systemd keeps all of it', () => {
    // The check verify cannot make: an unquoted `Environment=A=--bind 0.0.0.0:8500` is read as
    // two assignments, and the second one is dropped. verify warns about it (tested above);
    // this says which form the units use, so the next edit keeps it.
    for (const unit of units) {
      for (const line of environmentLines(readFileSync(join(UNIT_DIR, unit), 'utf8'))) {
        const value = line.slice('Environment='.length);
        if (/\s/.test(value)) expect(value, `${unit}: ${line}`).to.match(/^"[^"]*"$/);
      }
    }
  });

  it('verify reports the unquoted form this test guards against', () => {
    const bad = join(dir, 'bad.service');
    writeFileSync(
      bad,
      '[Service]\nEnvironment=ARGS=--bind 0.0.0.0:8500\nExecStart=/usr/bin/env true $ARGS\n',
    );
    expect(verify(bad).output).to.contain('Invalid environment assignment');
  });
});
