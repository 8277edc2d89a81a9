/**
 * `trellis lab up --servers 3`: three real etcd members (Debian's etcd-server) and three real
 * `trellis server --store etcd` processes, one of each per server namespace, and the default
 * three app hosts whose agents know every server. Proves:
 *
 * - the layout: one etcd member and one server per server host, all on lab addresses, one CA
 *   key file shared through the state dir, every agent given all three servers;
 * - web's user calls api through the sidecars (the outbound proxy counts it);
 * - all three servers name the same leader and list three peers;
 * - SIGKILL of the leading server's process (its PID from lab.json): the survivors name a new
 *   leader among themselves, every agent (the ones whose first server was the dead one too)
 *   still gets writes through to the catalog, and the mesh call still works;
 * - `lab down` leaves no namespace, no process, no user it made, no state.
 *
 * Needs root, ip, nft, setpriv, curl and the etcd binary; skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import {
  ACTIVE_FILE,
  CA_KEY_FILE,
  defaultStateDir,
  labDown,
  labStatus,
  labUp,
  LAB_USERS,
  readState,
  SERVER_HTTP_ADDR,
  type LabOptions,
  type LabState,
  type Topology,
} from '../../src/lab/index.js';
import { etcdMissing } from '../helpers/etcd-cluster.js';
import { netnsSkipReason } from '../helpers/netns.js';
import { eventually, TRELLIS_BIN } from '../helpers/trellis-process.js';

// A name of the test's own: never the default `tlab`, nor the other lab tests' names.
const NAME = 'tletcd';
const STATE_DIR = defaultStateDir(NAME);
const OPTS: LabOptions = {
  name: NAME,
  stateDir: STATE_DIR,
  servers: 3,
  trellis: [process.execPath, TRELLIS_BIN],
};

function run(ns: string, argv: string[], timeoutMs = 15_000): { code: number; out: string } {
  try {
    const out = execFileSync('ip', ['netns', 'exec', ns, ...argv], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function labNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${NAME}-`));
}

function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
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

describe('trellis lab up --servers: bad input', function () {
  this.timeout(60_000);

  it('refuses a server count other than 1 or 3 with a usage error, making nothing', () => {
    for (const bad of ['2', '5', 'many']) {
      let code = 0;
      let stderr = '';
      try {
        execFileSync(
          process.execPath,
          [TRELLIS_BIN, 'lab', 'up', '--name', NAME, '--servers', bad],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
      } catch (e) {
        const err = e as { status?: number; stderr?: string };
        code = err.status ?? -1;
        stderr = err.stderr ?? '';
      }
      expect(code, bad).to.equal(2);
      expect(stderr.split('\n')[0], bad).to.contain('--servers must be 1').and.contain('or 3');
      expect(stderr).to.not.contain('    at ');
    }
  });

  it('names the missing etcd binary before making anything', async function () {
    const why = netnsSkipReason();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    let err: unknown;
    await labUp({ ...OPTS, etcd: '/nonexistent/etcd' }).catch((e: unknown) => (err = e));
    expect(String(err)).to.contain('--servers 3 runs etcd').and.contain('etcd-server');
    expect(labNamespaces()).to.deep.equal([]);
    expect(existsSync(STATE_DIR)).to.equal(false);
  });
});

describe('trellis lab up --servers 3: three servers over a three-member etcd', function () {
  this.timeout(300_000);
  const skip =
    netnsSkipReason(['curl']) ??
    etcdMissing() ??
    (existsSync(ACTIVE_FILE) && !readFileSync(ACTIVE_FILE, 'utf8').includes(`"${NAME}"`)
      ? `another lab is up on this machine (${ACTIVE_FILE})`
      : undefined);
  let topo: Topology;
  let state: LabState;
  let ran = false;
  let baseline: { links: string; users: string[] };
  const ns = (host: string): string => `${NAME}-${host}`;

  const curlAsWeb = (url: string): { code: number; out: string } =>
    run(ns('app1'), [
      ...['setpriv', '--reuid', LAB_USERS.web, '--regid', LAB_USERS.web, '--init-groups'],
      ...['curl', '-sS', '-m', '5', url],
    ]);
  const meshWorks = (): boolean =>
    /^hello from api on app[23]/.test(curlAsWeb('http://api.service.consul/').out);
  const outbound = (): number => {
    const m =
      /trellis_tcp_connections_opened_total\{direction="outbound",source_service="web",destination_service="api"\} (\d+)/.exec(
        run(ns('app1'), ['curl', '-s', 'http://127.0.0.1:8500/v1/agent/metrics?format=prometheus'])
          .out,
      );
    return m ? Number(m[1]) : 0;
  };
  /** What one server's API says, on its host's loopback; undefined when it does not answer. */
  const status = (server: string, what: 'leader' | 'peers'): string | string[] | undefined => {
    const r = run(ns(server), [
      'curl',
      '-sf',
      '-m',
      '3',
      `http://${SERVER_HTTP_ADDR}/v1/status/${what}`,
    ]);
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.out) as string | string[];
    } catch {
      return undefined;
    }
  };
  const serverProc = (host: string) =>
    state.processes.find((p) => p.host === host && p.role === 'server')!;

  before(async function () {
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    ran = true;
    await labDown(OPTS).catch(() => undefined); // a lab left by an interrupted run
    baseline = {
      links: execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }),
      users: existingUsers(),
    };
    const started = performance.now();
    const up = await labUp(OPTS);
    console.log(
      `      lab up --servers 3 took ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    topo = up.topology;
    state = readState(STATE_DIR)!;
  });

  after(async () => {
    // Only the test's own lab, and only if it ran (mocha runs `after` for a skipped suite too).
    if (ran && labNamespaces().length > 0) await labDown(OPTS).catch(() => {});
  });

  it('runs one etcd member and one server per server host, on lab addresses, sharing one key file', async () => {
    expect(topo.store).to.equal('etcd');
    expect(topo.hosts.map((h) => `${h.name} ${h.address}`)).to.deep.equal([
      'server1 198.18.0.101',
      'server2 198.18.0.102',
      'server3 198.18.0.103',
      'app1 198.18.0.11',
      'app2 198.18.0.12',
      'app3 198.18.0.13',
    ]);
    expect(state.servers).to.equal(3);
    const endpoints = 'http://198.18.0.101:2379,http://198.18.0.102:2379,http://198.18.0.103:2379';
    const keyFile = `${STATE_DIR}/${CA_KEY_FILE}`;
    expect(state.caEncryptionKeyFile).to.equal(keyFile);
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64')).to.have.length(32);
    for (const host of ['server1', 'server2', 'server3']) {
      const etcd = state.processes.find((p) => p.host === host && p.role === 'etcd')!;
      expect(etcd.namespace).to.equal(ns(host));
      expect(alive(etcd.pid!), `etcd on ${host}`).to.equal(true);
      const server = serverProc(host);
      expect(alive(server.pid!), `server on ${host}`).to.equal(true);
      expect(server.argv.join(' '))
        .to.contain(`--store etcd --etcd-endpoints ${endpoints}`)
        .and.contain(`--ca-encryption-key-file ${keyFile}`);
      // etcd answers on the host's lab address, from another host.
      const health = run(ns('app1'), [
        'curl',
        '-sf',
        '-m',
        '3',
        `http://${topo.hosts.find((h) => h.name === host)!.address}:2379/health`,
      ]);
      expect(health.out, host).to.contain('"health":"true"');
    }
    for (const app of ['app1', 'app2', 'app3']) {
      const agent = state.processes.find((p) => p.host === app && p.role === 'agent')!;
      const servers = agent.argv.flatMap((a, i) => (a === '--server' ? [agent.argv[i + 1]] : []));
      expect(servers, app).to.have.members([
        '198.18.0.101:8501',
        '198.18.0.102:8501',
        '198.18.0.103:8501',
      ]);
    }
    const st = await labStatus(OPTS);
    expect(st.store).to.equal('etcd');
    expect(st.etcd?.map((m) => m.healthy)).to.deep.equal([true, true, true]);
    expect(st.servers).to.have.length(3);
    expect(st.leader).to.be.oneOf(['server1', 'server2', 'server3']);
    expect(st.services?.find((s) => s.name === 'api')?.instances).to.have.length(2);
  });

  it('carries web -> api through the sidecars', async () => {
    const before = outbound();
    await eventually(() => Promise.resolve(meshWorks()), 30_000, 500);
    expect(outbound()).to.be.above(before);
  });

  it('has all three servers name the same leader and three peers', () => {
    const leaders = ['server1', 'server2', 'server3'].map((h) => status(h, 'leader'));
    expect(new Set(leaders).size, JSON.stringify(leaders)).to.equal(1);
    expect(leaders[0]).to.match(/^198\.18\.0\.10[1-3]:8300$/);
    for (const h of ['server1', 'server2', 'server3'])
      expect(status(h, 'peers'), h).to.have.members([
        '198.18.0.101:8300',
        '198.18.0.102:8300',
        '198.18.0.103:8300',
      ]);
  });

  it('survives a SIGKILL of the leading server: a new leader, agents fail over, the mesh works', async () => {
    const leader = status('server1', 'leader') as string;
    const dead = topo.hosts.find((h) => `${h.address}:8300` === leader)!;
    const survivors = ['server1', 'server2', 'server3'].filter((h) => h !== dead.name);
    const pid = serverProc(dead.name).pid!;
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    await eventually(() => Promise.resolve(!alive(pid)), 10_000, 50);
    expect(status(dead.name, 'leader')).to.equal(undefined);

    // The survivors agree on a new leader, one of them, and drop the dead one from the peers.
    const newLeader = await eventually(
      () => {
        const named = survivors.map((h) => status(h, 'leader'));
        const peers = survivors.map((h) => status(h, 'peers'));
        const agreed =
          new Set(named).size === 1 &&
          typeof named[0] === 'string' &&
          named[0] !== '' &&
          named[0] !== leader &&
          peers.every((p) => Array.isArray(p) && p.length === 2);
        return Promise.resolve(agreed ? (named[0] as string) : undefined);
      },
      60_000,
      250,
    );
    const electedS = (performance.now() - killedAt) / 1000;
    expect(survivors.map((h) => topo.hosts.find((x) => x.name === h)!.address)).to.include(
      newLeader.replace(/:8300$/, ''),
    );

    // Every agent gets a write through to the catalog, the ones that listed the dead server
    // first included: they moved to a surviving server.
    for (const app of ['app1', 'app2', 'app3']) {
      await eventually(
        () =>
          Promise.resolve(
            run(ns(app), [
              ...['curl', '-sf', '-m', '5', '-X', 'PUT', '--data', app],
              `http://127.0.0.1:8500/v1/kv/lab-failover/${app}`,
            ]).out.trim() === 'true',
          ),
        60_000,
        500,
      );
    }
    const writesS = (performance.now() - killedAt) / 1000;
    const keys = run(ns(survivors[0]!), [
      ...['curl', '-sf', '-m', '5'],
      `http://${SERVER_HTTP_ADDR}/v1/kv/lab-failover/?keys`,
    ]);
    expect(JSON.parse(keys.out)).to.have.members([
      'lab-failover/app1',
      'lab-failover/app2',
      'lab-failover/app3',
    ]);

    const before = outbound();
    await eventually(() => Promise.resolve(meshWorks()), 30_000, 500);
    expect(outbound()).to.be.above(before);
    console.log(
      `      killed ${dead.name} (leader); new leader ${newLeader} named by both survivors after ${electedS.toFixed(1)} s; every agent's write accepted after ${writesS.toFixed(1)} s`,
    );

    const st = await labStatus(OPTS);
    expect(st.servers?.find((s) => s.host === dead.name)?.leader).to.equal(undefined);
    expect(st.leader).to.be.oneOf(survivors);
    const deadProc = st.hosts.find((h) => h.name === dead.name)!.processes;
    expect(deadProc.find((p) => p.role === 'server')?.alive).to.equal(false);
    expect(deadProc.find((p) => p.role === 'etcd')?.alive).to.equal(true);
  });

  it('lab down leaves no namespace, no process, no user it made and no state', async () => {
    const recorded = (readState(STATE_DIR)?.processes ?? []).flatMap((p) =>
      p.pid === undefined ? [] : [p.pid],
    );
    const pids = [...new Set([...recorded, ...labNamespaces().flatMap(nsPids)])];
    expect(pids.length).to.be.at.least(12); // 3 etcd, 3 servers, 3 agents, 3 apps
    const down = await labDown(OPTS);
    expect(down.namespacesDeleted).to.have.length(7);
    expect(labNamespaces(), 'lab namespaces left').to.deep.equal([]);
    expect(pids.filter(alive), 'lab processes still alive').to.deep.equal([]);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).to.equal(baseline.links);
    expect(existingUsers()).to.deep.equal(baseline.users);
    expect(existsSync(STATE_DIR), `${STATE_DIR} left`).to.equal(false);
    expect(existsSync(ACTIVE_FILE), `${ACTIVE_FILE} left`).to.equal(false);
  });
});
