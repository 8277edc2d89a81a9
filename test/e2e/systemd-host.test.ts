/**
 * The Debian package's units under a real systemd (test/helpers/systemd-host.ts: systemd booted
 * as PID 1 of private namespaces over an overlay of this machine, network loopback only). The
 * package is installed with dpkg, a server and an agent are configured as docs/deploy.md says,
 * and then, with systemctl:
 *
 *   - the units start with their hardening, as the trellis user, and report ready (Type=notify);
 *     the agent pulls in trellis-proxy; a web -> api call goes through both sidecars;
 *   - `systemctl restart trellis-agent` three times and `systemctl reload trellis-proxy` (what
 *     an upgrade does) under steady load: no request fails;
 *   - `systemctl stop trellis-proxy` drains the host: the agent exits cleanly and its node leaves
 *     the catalog.
 *
 * The server reads its own config dir (a drop-in), since on this one host the agent's services
 * would otherwise be registered by the server's node too.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { debPackage } from '../helpers/deb-package.js';
import { SystemdHost } from '../helpers/systemd-host.js';
import { eventually, tempDir } from '../helpers/trellis-process.js';

const REPO = resolve('.');
const VERSION = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
).version;
const LOAD = join(REPO, 'test/fixtures/systemd/load.mjs');

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts, cgroups)';
  for (const tool of ['dpkg-deb', 'unshare', 'nsenter']) {
    if (spawnSync(tool, ['--version']).error) return `${tool} is missing`;
  }
  if (spawnSync('/lib/systemd/systemd', ['--version']).error)
    return 'systemd is missing (the systemd package; .ci/run installs it)';
  return undefined;
}

const SERVER_ARGS =
  'TRELLIS_SERVER_ARGS="--node srv1 --bind 127.0.0.1:8300 --https-bind off --acl-default-policy allow"\n';
const AGENT_ARGS =
  'TRELLIS_AGENT_ARGS="--node host1 --server 127.0.0.1:8300 --http-addr 127.0.0.1:8500 --dns-bind 127.0.0.1:8600"\n';
const SERVER_DROP_IN =
  '[Service]\nExecStart=\nExecStart=/usr/bin/trellis server --data-dir /var/lib/trellis/server --config-dir /etc/trellis-server.d $TRELLIS_SERVER_ARGS\n';
const API =
  'service {\n  name = "api"\n  port = 9090\n  connect { sidecar_service { port = 21000 } }\n}\n';
const WEB =
  'service {\n  name = "web"\n  port = 9091\n  connect {\n    sidecar_service {\n      port = 21001\n      proxy { upstreams = [{ destination_name = "api", local_bind_port = 9191 }] }\n    }\n  }\n}\n';

describe('the package under a real systemd (one test host)', function () {
  this.timeout(600_000);
  let host: SystemdHost | undefined;

  /** Writes `text` to `path` inside the host. */
  const write = (path: string, text: string): void => {
    host!.must([
      'sh',
      '-c',
      `mkdir -p "$(dirname "$1")" && printf '%s' "$2" > "$1"`,
      'sh',
      path,
      text,
    ]);
  };
  /** GET through web's upstream listener (web -> api over mTLS): the HTTP status, 0 if none. */
  const call = (): number => {
    const r = host!.run([
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-m',
      '5',
      'http://127.0.0.1:9191/',
    ]);
    return Number(r.stdout) || 0;
  };
  /** CapEff of a unit's main process. */
  const capEff = (unit: string): string => {
    const pid = host!.unit(unit, 'MainPID');
    const status = host!.must(['cat', `/proc/${pid}/status`]);
    return /^CapEff:\s*(\S+)/m.exec(status)![1]!;
  };
  const uid = (unit: string): string => {
    const pid = host!.unit(unit, 'MainPID');
    return host!.must(['stat', '-c', '%U', `/proc/${pid}`]).trim();
  };

  before(async function () {
    const reason = skipReason();
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    const deb = debPackage(VERSION);
    host = await SystemdHost.boot(`trellis-test-sd-${process.pid}`, tempDir('sdhost-layers'));
    host.copyIn(deb, '/tmp/trellis.deb');
    host.copyIn(LOAD, '/tmp/load.mjs');
    host.must(['ip', 'link', 'set', 'lo', 'up']);
    host.must(['dpkg', '-i', '/tmp/trellis.deb']);
    write('/etc/default/trellis-server', SERVER_ARGS);
    write('/etc/default/trellis-agent', AGENT_ARGS);
    write('/etc/systemd/system/trellis-server.service.d/test.conf', SERVER_DROP_IN);
    host.must(['mkdir', '-p', '/etc/trellis-server.d']);
    write('/etc/trellis.d/api.hcl', API);
    write('/etc/trellis.d/web.hcl', WEB);
    host.must(['systemctl', 'daemon-reload']);
  });

  after(async () => {
    await host?.stop();
  });

  it('trellis-server: ready once its API answers, as trellis, with no capability', () => {
    // systemctl start returns once READY=1 arrived (Type=notify): the API answers at once.
    host!.must(['systemctl', 'start', 'trellis-server']);
    expect(host!.unit('trellis-server', 'ActiveState')).to.equal('active');
    expect(host!.unit('trellis-server', 'StatusText')).to.equal(
      'serving the API on 127.0.0.1:8300',
    );
    expect(host!.must(['curl', '-sf', 'http://127.0.0.1:8300/v1/status/leader']).trim()).to.match(
      /^"127\.0\.0\.1:\d+"$/,
    );
    expect(uid('trellis-server')).to.equal('trellis');
    expect(capEff('trellis-server')).to.equal('0000000000000000');
  });

  it('trellis-agent pulls in trellis-proxy; both ready; web calls api through the sidecars', async () => {
    host!.must(['systemctl', 'start', 'trellis-agent']);
    for (const unit of ['trellis-agent', 'trellis-proxy'])
      expect(host!.unit(unit, 'ActiveState'), unit).to.equal('active');
    expect(host!.unit('trellis-agent', 'StatusText')).to.equal('agent API on 127.0.0.1:8500');
    expect(host!.unit('trellis-proxy', 'StatusText')).to.equal(
      'data plane on /run/trellis/data-plane.sock',
    );
    expect(uid('trellis-agent')).to.equal('trellis');
    expect(uid('trellis-proxy')).to.equal('trellis');
    // CAP_NET_ADMIN (bit 12) and nothing else for the agent; nothing for the data plane.
    expect(capEff('trellis-agent')).to.equal('0000000000001000');
    expect(capEff('trellis-proxy')).to.equal('0000000000000000');
    expect(host!.must(['stat', '-c', '%a %U', '/run/trellis/data-plane.sock']).trim()).to.equal(
      '600 trellis',
    );
    // The application, as its own dynamic user.
    host!.must([
      'systemd-run',
      '--unit',
      'api-app',
      '-p',
      'DynamicUser=yes',
      '/usr/bin/python3',
      '-m',
      'http.server',
      '9090',
      '--bind',
      '127.0.0.1',
    ]);
    await eventually(async () => call() === 200, 60_000, 200);
  });

  it('restarting the agent three times and reloading the data plane under load fails no request', async () => {
    const load = host!.start(['node', '/tmp/load.mjs', '9191', '/tmp/load.stop']);
    let out = '';
    load.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => load.once('exit', r));
    await new Promise((r) => setTimeout(r, 2000));
    const proxyPid = host!.unit('trellis-proxy', 'MainPID');
    for (let i = 0; i < 3; i++) {
      const before = host!.unit('trellis-agent', 'MainPID');
      host!.must(['systemctl', 'restart', 'trellis-agent']);
      expect(host!.unit('trellis-agent', 'MainPID')).to.not.equal(before);
      expect(host!.unit('trellis-agent', 'ActiveState')).to.equal('active');
      await new Promise((r) => setTimeout(r, 1500));
    }
    const workers = (): string =>
      host!.must(['cat', `/proc/${proxyPid}/task/${proxyPid}/children`]).trim();
    const before = workers();
    // What the package's upgrade runs: new workers take the listeners over, the old drain.
    host!.must(['systemctl', 'reload', 'trellis-proxy']);
    await eventually(
      async () =>
        workers()
          .split(' ')
          .every((w) => !before.includes(w)),
      60_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 1500));
    host!.must(['touch', '/tmp/load.stop']);
    await done;
    const result = JSON.parse(out) as { ok: number; failed: number; why: object; gapMs: number };
    expect(result.ok).to.be.greaterThan(500);
    expect(result.failed, JSON.stringify(result.why)).to.equal(0);
    expect(host!.unit('trellis-proxy', 'MainPID')).to.equal(proxyPid);
  });

  it('systemctl stop trellis-proxy drains the host: the agent exits cleanly and leaves the catalog', () => {
    host!.must(['systemctl', 'stop', 'trellis-proxy']);
    expect(host!.unit('trellis-proxy', 'ActiveState')).to.equal('inactive');
    expect(host!.unit('trellis-agent', 'ActiveState')).to.equal('inactive');
    expect(host!.unit('trellis-agent', 'Result')).to.equal('success');
    const journal = host!.must(['journalctl', '-u', 'trellis-agent', '--no-pager', '-o', 'cat']);
    expect(journal).to.contain('the data plane is stopping: draining the host');
    const nodes = JSON.parse(
      host!.must(['curl', '-sf', 'http://127.0.0.1:8300/v1/catalog/nodes']),
    ) as {
      Node: string;
    }[];
    expect(nodes.map((n) => n.Node)).to.deep.equal(['srv1']);
  });
});
