/**
 * Throwaway network namespaces for tests that need root: `trellis-t-<random>`, created and
 * deleted by the test, so nftables rules and routes never touch the host's own namespace.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const TEST_NS_PREFIX = 'trellis-t-';

/** Whether `bin` runs (tools disagree on their version flag). */
function has(bin: string, arg?: string): boolean {
  for (const a of arg ? [arg] : ['--version', '-v', '-V']) {
    try {
      execFileSync(bin, [a], { stdio: 'ignore', timeout: 5000 });
      return true;
    } catch {
      // try the next flag
    }
  }
  return false;
}

/** Why namespace tests cannot run here (undefined: they can). */
export function netnsSkipReason(extra: string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and nft)';
  if (!has('ip', '-V')) return 'needs the ip command (iproute2)';
  if (!has('nft', '--version')) return 'needs the nft command (nftables)';
  if (!has('setpriv')) return 'needs setpriv (util-linux)';
  for (const bin of extra) if (!has(bin)) return `needs ${bin}`;
  return undefined;
}

/** Runs a command in the namespace; throws with its output on a non-zero exit. */
export function inNs(ns: string, argv: string[], timeoutMs = 15_000): string {
  if (!ns.startsWith(TEST_NS_PREFIX)) throw new Error(`not a test namespace: ${ns}`);
  return execFileSync('ip', ['netns', 'exec', ns, ...argv], {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Like inNs, but returns exit code and output instead of throwing. */
export function tryInNs(
  ns: string,
  argv: string[],
  timeoutMs = 15_000,
): { code: number; stdout: string; stderr: string } {
  try {
    return { code: 0, stdout: inNs(ns, argv, timeoutMs), stderr: '' };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** The argv that runs `argv` as `uid` (no supplementary groups). */
export function asUid(uid: number, argv: string[]): string[] {
  return ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', ...argv];
}

/**
 * A namespace with loopback up and one veth whose address is `address/24` and which carries
 * the default route (so virtual IPs in 240.0.0.0/4 are routed and reach the nft output hook).
 * The peer end stays in the namespace: nothing leaves the machine.
 */
export function createTestNs(address: string): string {
  const ns = `${TEST_NS_PREFIX}${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
  try {
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(ns, ['ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1']);
    inNs(ns, ['ip', 'link', 'set', 'tv0', 'up']);
    inNs(ns, ['ip', 'link', 'set', 'tv1', 'up']);
    inNs(ns, ['ip', 'addr', 'add', `${address}/24`, 'dev', 'tv0']);
    inNs(ns, ['ip', 'route', 'add', 'default', 'dev', 'tv0']);
  } catch (e) {
    deleteTestNs(ns);
    throw e;
  }
  return ns;
}

/** Kills whatever still runs in the namespace (only our test processes can) and deletes it. */
export function deleteTestNs(ns: string): void {
  if (!ns.startsWith(TEST_NS_PREFIX)) return;
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 })
      .split('\n')
      .filter((p) => /^\d+$/.test(p));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // namespace already gone
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone
  }
}

/** A long-running process in the namespace (stopped by the caller, by PID). */
export function spawnInNs(ns: string, argv: string[]): ChildProcess {
  if (!ns.startsWith(TEST_NS_PREFIX)) throw new Error(`not a test namespace: ${ns}`);
  return spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'ignore' });
}
