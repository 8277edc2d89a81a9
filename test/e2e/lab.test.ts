/**
 * `trellis lab`: a server and three app hosts in network namespaces, brought up and down twice
 * (in process and through the CLI), and once killed halfway through `up`. After every `down`
 * the machine must be exactly as before: no lab namespaces, the same root-namespace links, no
 * lab process alive, no user the lab made, no state dir. Needs root, ip, nft and setpriv.
 */
import { expect } from 'chai';
import {
  execFile,
  execFileSync,
  spawn,
  type ExecFileSyncOptionsWithStringEncoding,
} from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ACTIVE_FILE,
  defaultStateDir,
  labDown,
  labStatus,
  labUp,
  readState,
  LAB_USERS,
  SERVER_HTTP_ADDR,
  type LabOptions,
} from '../../src/lab/index.js';
import { eventually, TRELLIS_BIN } from '../helpers/trellis-process.js';

const run = promisify(execFile);
// `ip netns list` warns on stderr about a namespace caught half-made; that is expected here.
const QUIET: ExecFileSyncOptionsWithStringEncoding = {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'ignore'],
};
// A name of the test's own, never the default: a lab the user runs from this checkout (`tlab`)
// is none of the test's business.
const NAME = 'tltest';
const STATE_DIR = defaultStateDir(NAME);
const OPTS: LabOptions = { name: NAME, trellis: [process.execPath, TRELLIS_BIN], hosts: 3 };

function has(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$0"', bin], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, users)';
  for (const bin of ['ip', 'nft', 'setpriv', 'useradd', 'userdel'])
    if (!has(bin)) return `needs the ${bin} command`;
  if (existsSync(ACTIVE_FILE)) return `a lab is already up on this machine (${ACTIVE_FILE})`;
  return undefined;
}

/** What the lab may change and must restore. */
interface Snapshot {
  links: string;
  labNamespaces: string[];
  users: string[];
}

function labNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], QUIET)
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${NAME}-`));
}

function existingUsers(): string[] {
  return Object.values(LAB_USERS).filter((u) => {
    try {
      execFileSync('id', ['-u', u], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}

function snapshot(): Snapshot {
  return {
    links: execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }),
    labNamespaces: labNamespaces(),
    users: existingUsers(),
  };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], QUIET).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every PID the lab recorded or that lives in one of its namespaces, before `down`. */
function labPids(): number[] {
  const recorded = (readState(STATE_DIR)?.processes ?? []).flatMap((p) =>
    p.pid === undefined ? [] : [p.pid],
  );
  const inNs = labNamespaces().flatMap(nsPids);
  return [...new Set([...recorded, ...inNs])];
}

function expectClean(before: Snapshot, pids: readonly number[]): void {
  const after = snapshot();
  expect(after.labNamespaces, 'lab namespaces left').to.deep.equal([]);
  expect(after.links, 'root namespace links changed').to.equal(before.links);
  expect(after.users, 'users changed').to.deep.equal(before.users);
  expect(pids.filter(alive), 'lab processes still alive').to.deep.equal([]);
  expect(existsSync(STATE_DIR), `${STATE_DIR} left`).to.equal(false);
  expect(existsSync(ACTIVE_FILE), `${ACTIVE_FILE} left`).to.equal(false);
}

/** The trellis CLI, run to completion. */
async function cli(
  args: string[],
  opts: { uid?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [process.execPath, TRELLIS_BIN, ...args];
  const cmd = opts.uid
    ? ['setpriv', '--reuid', opts.uid, '--regid', opts.uid, '--clear-groups', ...argv]
    : argv;
  try {
    const { stdout, stderr } = await run(cmd[0]!, cmd.slice(1), { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

interface CatalogService {
  ServiceName: string;
  Node: string;
}

/** `trellis catalog service NAME` run inside the server's namespace against the server. */
async function catalogInstances(service: string): Promise<CatalogService[]> {
  const { stdout } = await run('ip', [
    'netns',
    'exec',
    `${NAME}-server`,
    process.execPath,
    TRELLIS_BIN,
    'catalog',
    'service',
    service,
    '--http-addr',
    SERVER_HTTP_ADDR,
    '--format',
    'json',
  ]);
  return JSON.parse(stdout) as CatalogService[];
}

describe('trellis lab: a mesh of network namespaces on one machine', function () {
  this.timeout(180_000);
  let baseline: Snapshot;
  let ran = false;

  before(function () {
    const reason = skipReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    ran = true;
    baseline = snapshot();
  });

  after(async () => {
    // Whatever a failed test left behind: only the test's own lab, and only if it ran (mocha
    // runs `after` for a skipped suite too).
    if (ran && labNamespaces().length > 0) await labDown(OPTS).catch(() => {});
  });

  it('refuses bad input with a clear error and makes nothing', async () => {
    const hosts = await cli(['lab', 'up', '--hosts', '0']);
    expect(hosts.code).to.equal(2);
    expect(hosts.stderr).to.contain('--hosts must be an integer from 1 to 20');
    const word = await cli(['lab', 'up', '--hosts', 'many']);
    expect(word.code).to.not.equal(0);
    expect(word.stderr).to.match(/--hosts/);
    const name = await cli(['lab', 'up', '--name', 'Bad-Name']);
    expect(name.code).to.equal(2);
    expect(name.stderr).to.contain('lab name "Bad-Name"');
    let err: unknown;
    await labUp({ ...OPTS, hosts: 99 }).catch((e: unknown) => (err = e));
    expect(String(err)).to.contain('--hosts must be an integer');
    const exec = await cli(['lab', 'exec', 'app1', '--', 'true']);
    expect(exec.code).to.equal(1);
    expect(exec.stderr).to.contain('is not up');
    const bare = await cli(['lab', 'exec', 'app1']);
    expect(bare.code).to.equal(2);
    expect(bare.stderr).to.contain('nothing to run');
    expectClean(baseline, []);
  });

  it('refuses to run as non-root, with one line and no stack trace', async () => {
    const r = await cli(['lab', 'up'], { uid: '65534' });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('needs root');
    expect(r.stderr).to.not.contain('    at ');
    expect(snapshot().labNamespaces).to.deep.equal([]);
  });

  it('comes up, serves, and goes down leaving nothing behind (in process)', async () => {
    const lines: string[] = [];
    const up = await labUp({ ...OPTS, out: (l) => lines.push(l) });
    expect(up.topology.hosts.map((h) => h.namespace)).to.deep.equal([
      `${NAME}-server`,
      `${NAME}-app1`,
      `${NAME}-app2`,
      `${NAME}-app3`,
    ]);
    expect(lines.join('\n')).to.contain('starting agent on app3').and.contain('lab down');
    expect(lines.join('\n')).to.match(/joining through \S+ \(join token accessor [0-9a-f-]{36}\)/);

    // `up` returned: every app host's capture is in force now, not eventually.
    for (const host of ['app1', 'app2', 'app3']) {
      const { stdout } = await run('ip', [
        'netns',
        'exec',
        `${NAME}-${host}`,
        'nft',
        'list',
        'table',
        'inet',
        'trellis',
      ]);
      expect(stdout, host)
        .to.match(/table inet trellis/)
        .and.match(/redirect to :/);
    }

    const status = await labStatus(OPTS);
    expect(status.phase).to.equal('up');
    expect(status.switchNamespace).to.deep.equal({ name: `${NAME}-sw`, present: true });
    for (const h of status.hosts) {
      expect(h.present, h.name).to.equal(true);
      for (const p of h.processes) expect(p.alive, `${p.role} on ${h.name}`).to.equal(true);
    }
    const roles = status.hosts.flatMap((h) => h.processes.map((p) => `${h.name}/${p.role}`));
    expect(roles).to.have.members([
      'server/server',
      'app1/web',
      'app1/agent',
      'app2/api',
      'app2/agent',
      'app3/api',
      'app3/agent',
    ]);

    // exec: the host's own address on eth0, and the exit code comes back.
    const addr = await cli(['lab', 'exec', 'app2', '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(addr.code, addr.stderr).to.equal(0);
    expect(addr.stdout).to.contain('198.18.0.12/24');
    expect((await cli(['lab', 'exec', 'app1', '--', 'sh', '-c', 'exit 7'])).code).to.equal(7);
    const unknown = await cli(['lab', 'exec', 'app9', '--', 'true']);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.contain('unknown host "app9"');

    // app1 reaches api's port on app2 over the bridge (only the TCP connection: once
    // interception is on, plaintext to 8080 goes to the sidecar's TLS listener).
    await run('ip', [
      'netns',
      'exec',
      `${NAME}-app1`,
      process.execPath,
      '-e',
      `require('net').connect(8080, '198.18.0.12')
        .on('connect', () => process.exit(0))
        .on('error', (e) => { console.error(String(e)); process.exit(1); })
        .setTimeout(5000, () => process.exit(2));`,
    ]);

    // web's user reaches api through the mesh: its DNS query and connection to api's virtual
    // IP are captured, web's sidecar talks mTLS to an api sidecar, which hands it to the app.
    const hello = await eventually(
      async () => {
        const r = await cli([
          'lab',
          'exec',
          'app1',
          '--user',
          LAB_USERS.web,
          '--',
          process.execPath,
          '-e',
          `fetch('http://api.virtual.consul/', { signal: AbortSignal.timeout(5000) })
            .then((r) => r.text()).then((t) => process.stdout.write(t))`,
        ]);
        return /^hello from api on app[23]\n$/.test(r.stdout) ? r.stdout : undefined;
      },
      30_000,
      500,
    );
    expect(hello).to.match(/^hello from api on app[23]/);

    // The catalog, from the server's namespace with the trellis CLI.
    const services = status.services ?? [];
    const byName = new Map(services.map((s) => [s.name, s.instances.length]));
    expect(byName.get('web')).to.equal(1);
    expect(byName.get('web-sidecar-proxy')).to.equal(1);
    expect(byName.get('api')).to.equal(2);
    expect(byName.get('api-sidecar-proxy')).to.equal(2);
    const api = await catalogInstances('api');
    expect(api.map((n) => n.Node).sort()).to.deep.equal(['app2', 'app3']);

    // One lab at a time.
    let again: unknown;
    await labUp(OPTS).catch((e: unknown) => (again = e));
    expect(String(again)).to.contain('a lab is already up');

    const pids = labPids();
    expect(pids.length).to.be.at.least(7);
    const down = await labDown(OPTS);
    expect(down.namespacesDeleted).to.have.length(5);
    expectClean(baseline, pids);
    expect((await labDown(OPTS)).found, 'a second down has nothing to do').to.equal(false);
  });

  it('comes up and goes down again through the CLI, down even without lab.json', async () => {
    const up = await cli(['lab', 'up', '--hosts', '3', '--name', NAME]);
    expect(up.code, up.stderr + up.stdout).to.equal(0);
    expect(up.stdout).to.contain(`lab ${NAME} is up`).and.contain('trellis lab exec');
    const status = await cli(['lab', 'status']);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout.match(/ alive /g) ?? []).to.have.length(7);
    expect(status.stdout).to.contain('api-sidecar-proxy');
    const pids = labPids();
    // down must not depend on lab.json: it finds the namespaces by name.
    rmSync(join(STATE_DIR, 'lab.json'));
    const down = await cli(['lab', 'down']);
    expect(down.code, down.stderr).to.equal(0);
    expect(down.stdout).to.contain(`lab ${NAME} is down`);
    expectClean(baseline, pids);
  });

  it('cleans up after `lab up` is killed halfway', async () => {
    const child = spawn(process.execPath, [TRELLIS_BIN, 'lab', 'up', '--name', NAME], {
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Killed once its hosts exist and it has started the server in one of them.
    await eventually(
      async () => labNamespaces().includes(`${NAME}-app3`) && nsPids(`${NAME}-server`).length > 0,
      60_000,
      20,
    );
    child.kill('SIGKILL');
    await exited;
    expect(labNamespaces()).to.not.deep.equal([]);
    const pids = labPids();
    expect(pids.filter(alive), 'the server outlived lab up').to.not.deep.equal([]);
    const down = await cli(['lab', 'down']);
    expect(down.code, down.stderr).to.equal(0);
    expectClean(baseline, pids);
  });
});
