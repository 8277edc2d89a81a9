/**
 * A throwaway host with a real systemd as its init, for running the package's units for real:
 * systemd boots as PID 1 of private PID, mount, network, UTS, IPC and cgroup namespaces, in an
 * overlay of this machine's `/` (the lower layer, never written) with a tmpfs upper layer. It
 * reaches `trellis-test.target` (basic.target only), so nothing of the machine's own units runs
 * but what a test starts. Its network namespace has only loopback, unless it boots in a named
 * test namespace (`netns`), which several hosts may then share. Commands run inside through
 * nsenter. stop() kills the namespace's init (and with it every process inside) and removes the
 * cgroup made for it. Needs root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPids, eventually } from './trellis-process.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroup hierarchies systemd uses here: hybrid (name=systemd + unified) or pure v2. */
function hierarchies(): string[] {
  if (existsSync(join(CGROUP_ROOT, 'systemd', 'cgroup.procs')))
    return ['systemd', 'unified'].filter((h) => existsSync(join(CGROUP_ROOT, h, 'cgroup.procs')));
  if (existsSync(join(CGROUP_ROOT, 'cgroup.procs'))) return [''];
  return [];
}

/** rmdir of a cgroup and everything under it, deepest first (cgroup dirs hold no files). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) removeCgroup(p);
  }
  try {
    rmdirSync(dir);
  } catch {
    // a process may still be leaving it; the next run's name differs
  }
}

export interface HostRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class SystemdHost {
  readonly #unshare: ChildProcess;
  readonly #cgroups: string[];
  #console = '';
  /** systemd's process id as this machine sees it. */
  pid = 0;

  private constructor(unshare: ChildProcess, cgroups: string[]) {
    this.#unshare = unshare;
    this.#cgroups = cgroups;
    const keep = (d: Buffer): void => {
      this.#console = (this.#console + d.toString()).slice(-200_000);
    };
    unshare.stdout?.on('data', keep);
    unshare.stderr?.on('data', keep);
  }

  /** What systemd wrote to its console (the last 200 kB). */
  get console(): string {
    return this.#console;
  }

  /**
   * Boots a host named `name` (its cgroup's name too), its layers under the empty directory
   * `work`, and waits until systemd is up.
   */
  static async boot(
    name: string,
    work: string,
    opts: { netns?: string } = {},
  ): Promise<SystemdHost> {
    const found = hierarchies();
    if (found.length === 0)
      throw new Error(`no cgroup hierarchy systemd can use in ${CGROUP_ROOT}`);
    const hybrid = found[0] !== '';
    const cgroups = found.map((h) => join(CGROUP_ROOT, h, name));
    for (const c of cgroups) mkdirSync(c, { recursive: true });
    const script = `
set -e
${cgroups.map((c) => `echo $$ > ${c}/cgroup.procs`).join('\n')}
exec ${opts.netns ? `ip netns exec ${opts.netns} ` : ''}unshare --mount ${opts.netns ? '' : '--net '}--pid --fork --uts --ipc --cgroup --propagation private sh -c '
set -e
L=${work}/layers
mkdir -p "$L"
mount -t tmpfs -o mode=700 tmpfs "$L"
mkdir "$L/upper" "$L/work" "$L/root"
R="$L/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$L/upper,workdir=$L/work" "$R"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
# cgroupfs mounted inside the cgroup namespace is rooted at the own cgroup of this host: systemd
# then makes its slices there, never beside those of the machine.
mount -t tmpfs -o mode=755 tmpfs "$R/sys/fs/cgroup"
${
  hybrid
    ? `mkdir "$R/sys/fs/cgroup/systemd" "$R/sys/fs/cgroup/unified"
mount -t cgroup -o none,name=systemd cgroup "$R/sys/fs/cgroup/systemd"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup/unified"`
    : 'mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"'
}
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
printf "[Unit]\\nDescription=Trellis test host\\nRequires=basic.target\\nAfter=basic.target\\n" > "$R/etc/systemd/system/trellis-test.target"
hostname ${name}
exec chroot "$R" /usr/bin/env container=trellis-test /lib/systemd/systemd --system --unit=trellis-test.target --log-target=console --show-status=no
'
`;
    const unshare = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const host = new SystemdHost(unshare, cgroups);
    try {
      await eventually(
        async () => {
          if (unshare.exitCode !== null) throw new Error(`systemd exited:\n${host.console}`);
          const [child] = childPids(unshare.pid!);
          if (!child) return false;
          host.pid = child;
          const r = host.run(['systemctl', 'is-system-running']);
          return ['running', 'degraded'].includes(r.stdout.trim());
        },
        60_000,
        200,
      );
    } catch (err) {
      await host.stop();
      throw err;
    }
    return host;
  }

  #nsenter(): string[] {
    return ['-t', String(this.pid), '-m', '-p', '-u', '-i', '-n', '-C', '-r', '-w'];
  }

  /** Runs `argv` inside the host and waits for it. */
  run(argv: string[], opts: { timeoutMs?: number } = {}): HostRun {
    const r = spawnSync('nsenter', [...this.#nsenter(), ...argv], {
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs `argv` inside the host and throws with its output unless it exits 0. */
  must(argv: string[]): string {
    const r = this.run(argv);
    if (r.code !== 0)
      throw new Error(`${argv.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Starts `argv` inside the host in the background. */
  start(argv: string[]): ChildProcess {
    return spawn('nsenter', [...this.#nsenter(), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Copies a file of this machine to `dest` inside the host. */
  copyIn(src: string, dest: string): void {
    copyFileSync(src, `/proc/${this.pid}/root${dest}`);
  }

  /** One property of a unit (`systemctl show -p`). */
  unit(name: string, prop: string): string {
    return this.must(['systemctl', 'show', '-p', prop, '--value', name]).trim();
  }

  async stop(): Promise<void> {
    if (this.#unshare.exitCode === null && this.#unshare.signalCode === null) {
      const exited = new Promise((r) => this.#unshare.once('exit', r));
      // SIGKILL to a PID namespace's init ends every process in it.
      if (this.pid) process.kill(this.pid, 'SIGKILL');
      else this.#unshare.kill('SIGKILL');
      await exited;
    }
    for (const c of this.#cgroups) removeCgroup(c);
  }
}
