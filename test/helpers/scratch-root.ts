/**
 * A throwaway copy of this machine's root file system for installing packages: in a private
 * mount, network and PID namespace, an overlayfs whose lower layer is the host's `/` (never
 * written) and whose upper layer is a tmpfs. /dev (null, zero, random, urandom), /proc, /run,
 * /tmp and /mnt are fresh mounts, so what lands in the upper layer is only what the steps wrote
 * to the root file system. The upper layer is copied out at the end for the caller to inspect.
 * Needs root.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, lstatSync, readdirSync, existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface ScratchRun {
  code: number | null;
  output: string;
  /** Where the upper layer was copied (it exists once the steps ran). */
  upper: string;
}

/** The PATH the chroot's commands get: /usr/local first, as on Debian. */
const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Runs `steps` (sh, `set -e`) on the host side of the scratch root. In them `$R` is the root,
 * `run CMD...` runs a command chrooted there with a clean environment (`chroot "$R" /usr/bin/env -i
 * $CHROOT_ENV CMD... &` for a background process whose $! is the command itself), and `files` are
 * readable in the root under /mnt/ (a tmpfs, not part of the upper layer).
 */
export function runInScratchRoot(work: string, files: string[], steps: string): ScratchRun {
  const upper = join(work, 'upper');
  const layers = join(work, 'layers');
  const script = `
set -e
L=${JSON.stringify(layers)}
mkdir -p "$L"
mount -t tmpfs -o mode=700 tmpfs "$L"
mkdir "$L/upper" "$L/work" "$L/root"
R="$L/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$L/upper,workdir=$L/work" "$R"
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 tmpfs "$R/mnt"
${files.map((f) => `cp ${JSON.stringify(f)} "$R/mnt/"`).join('\n')}
CHROOT_ENV="PATH=${CHROOT_PATH} HOME=/root LANG=C.UTF-8"
run() { chroot "$R" /usr/bin/env -i $CHROOT_ENV "$@"; }
finish() {
  code=$?
  umount "$R/mnt" "$R/tmp" "$R/run" "$R/proc" "$R/dev" 2>/dev/null || true
  rm -rf ${JSON.stringify(upper)}
  cp -a "$L/upper" ${JSON.stringify(upper)}
  exit $code
}
trap finish EXIT
${steps}
`;
  const r = spawnSync(
    'unshare',
    ['--mount', '--net', '--pid', '--fork', '--propagation', 'private', 'sh', '-c', script],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}`, upper };
}

/**
 * Files dpkg and the account tools keep for themselves: dpkg's database and log, the
 * account files' backups (`/etc/passwd-` holds the file as it was before the last change, as on
 * any Debian host) and their lock file. Checked separately: the database must not list the package.
 */
function bookkeeping(rel: string): boolean {
  return (
    rel.startsWith('var/lib/dpkg/') ||
    rel === 'var/log/dpkg.log' ||
    /^etc\/(passwd|group|shadow|gshadow|subuid|subgid)-$/.test(rel) ||
    rel === 'etc/.pwd.lock'
  );
}

/**
 * What the steps left in the root file system, as a list of reasons (empty: nothing): a new
 * file or directory, a file whose content differs from the host's, a deleted host file (an
 * overlay whiteout), or the package still in dpkg's database.
 */
export function leftovers(upper: string, packageName: string): string[] {
  const found: string[] = [];
  const visit = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      const host = `/${r}`;
      if (st.isCharacterDevice() && st.rdev === 0) {
        if (!bookkeeping(r)) found.push(`${host}: a host file was deleted`);
      } else if (st.isDirectory()) {
        if (!existsSync(host) || !statSync(host).isDirectory())
          found.push(`${host}/: new directory`);
        visit(path, r);
      } else if (!bookkeeping(r)) {
        if (!existsSync(host)) found.push(`${host}: new file`);
        else if (!readFileSync(path).equals(readFileSync(host))) found.push(`${host}: changed`);
      }
    }
  };
  visit(upper, '');
  const status = join(upper, 'var/lib/dpkg/status');
  if (existsSync(status) && readFileSync(status, 'utf8').includes(`\nPackage: ${packageName}\n`)) {
    found.push(`dpkg still lists ${packageName}`);
  }
  const info = join(upper, 'var/lib/dpkg/info');
  if (existsSync(info)) {
    for (const f of readdirSync(info)) {
      if (basename(f).startsWith(`${packageName}.`)) found.push(`/var/lib/dpkg/info/${f}: left`);
    }
  }
  return found;
}
