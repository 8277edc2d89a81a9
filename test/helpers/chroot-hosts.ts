/**
 * Hosts for the Ansible role tests: each a chroot of an overlayfs over the host's `/` (read-only
 * lower; upper dir in the test's temp dir), all mounted inside one private mount namespace held
 * by a `sleep` process inside a test network namespace. ansible-playbook runs in there too and
 * reaches the hosts through the community.general.chroot connection.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { netnsSkipReason } from './netns.js';

function runs(bin: string, arg = '--version'): boolean {
  return spawnSync(bin, [arg], { stdio: 'ignore', timeout: 60_000 }).status === 0;
}

/** Why chroot hosts cannot be made here (undefined: they can). */
export function chrootHostsSkipReason(repo: string, extraBins: string[] = []): string | undefined {
  const ns = netnsSkipReason();
  if (ns) return ns;
  for (const bin of ['ansible-playbook', 'dpkg-deb', 'nsenter', 'unshare', ...extraBins])
    if (!runs(bin)) return `needs ${bin}`;
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'needs overlayfs';
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  if (!pkg.scripts?.package) return 'needs `npm run package` (the Debian package)';
  return undefined;
}

export class ChrootHosts {
  readonly #holder: ChildProcess;

  private constructor(
    readonly tmp: string,
    holder: ChildProcess,
  ) {
    this.#holder = holder;
  }

  /** Starts the holder in network namespace `ns` and mounts one chroot per host name. */
  static make(tmp: string, ns: string, hosts: readonly string[]): ChrootHosts {
    // `ip netns exec` and `unshare` exec in turn, so the PID is the holder's.
    const holder = spawn(
      'ip',
      ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sleep', 'infinity'],
      { stdio: 'ignore' },
    );
    const made = new ChrootHosts(tmp, holder);
    const ownMounts = readlinkSync('/proc/self/ns/mnt');
    for (let i = 0; ; i++) {
      let theirs = '';
      try {
        theirs = readlinkSync(`/proc/${holder.pid}/ns/mnt`);
      } catch {
        // not there yet
      }
      const comm = existsSync(`/proc/${holder.pid}/comm`)
        ? readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim()
        : '';
      if (theirs && theirs !== ownMounts && comm === 'sleep') break;
      if (i > 200) {
        holder.kill('SIGKILL');
        throw new Error('the mount namespace holder did not start');
      }
      execFileSync('sleep', ['0.05']);
    }
    for (const host of hosts) {
      for (const d of ['upper', 'work', 'root']) mkdirSync(join(tmp, host, d), { recursive: true });
      const root = made.root(host);
      made.inMounts([
        'mount',
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=/,upperdir=${join(tmp, host, 'upper')},workdir=${join(tmp, host, 'work')}`,
        root,
      ]);
      for (const d of ['proc', 'sys', 'dev'])
        made.inMounts(['mount', '--rbind', `/${d}`, join(root, d)]);
      for (const d of ['run', 'tmp'])
        made.inMounts(['mount', '-t', 'tmpfs', 'tmpfs', join(root, d)]);
    }
    return made;
  }

  /** The host's `/` as the holder's mount namespace sees it. */
  root(host: string): string {
    return join(this.tmp, host, 'root');
  }

  /** A command in the holder's mount namespace (and network namespace with `net`). */
  inMounts(argv: string[], net = false): string {
    return execFileSync(
      'nsenter',
      ['-t', String(this.#holder.pid), '-m', ...(net ? ['-n'] : []), '--', ...argv],
      { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  }

  /** ansible-playbook `playbook` with `inventory` (and extra vars), run inside the namespaces. */
  playbook(
    inventory: string,
    playbook: string,
    ansibleConfig: string,
    extra: string[] = [],
  ): { status: number | null; output: string } {
    const r = spawnSync(
      'nsenter',
      [
        ...['-t', String(this.#holder.pid), '-m', '-n', '--'],
        ...['ansible-playbook', '-i', inventory, playbook, ...extra],
      ],
      {
        cwd: this.tmp,
        encoding: 'utf8',
        timeout: 600_000,
        env: {
          ...process.env,
          ANSIBLE_CONFIG: ansibleConfig,
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_HOST_KEY_CHECKING: 'False',
          ANSIBLE_LOCAL_TEMP: join(this.tmp, 'ansible-local'),
        },
      },
    );
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  /** SIGKILLs the daemons the roles started on `host`, by the pidfiles in its /run/trellis. */
  killDaemons(host: string, daemons: readonly string[]): void {
    for (const daemon of daemons) {
      let pid = '';
      try {
        pid = this.inMounts([
          'cat',
          join(this.root(host), 'run', 'trellis', `${daemon}.pid`),
        ]).trim();
      } catch {
        continue;
      }
      if (!/^\d+$/.test(pid)) continue;
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Stops the holder (the mounts go with its namespace). */
  close(): void {
    this.#holder.kill('SIGKILL');
  }
}
