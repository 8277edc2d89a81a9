/**
 * `lab down`: undo everything a lab made, from lab.json plus what `ip netns list` shows, so it
 * works after a crashed `up` and when lab.json is gone. Idempotent; it carries on past a
 * failed step and reports every problem at the end.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CA_KEY_FILE } from './etcd.js';
import { deleteNamespace } from './network.js';
import { presentNamespaces, resolveLab, type LabOptions, type Settled } from './options.js';
import { commandLine, emptyNamespace, isAlive, stopPids } from './processes.js';
import { readActive, releaseActive, STATE_FILE, type LabState } from './state.js';
import { LabError, requireRoot, requireTools } from './sys.js';
import { deleteUser } from './users.js';

export interface LabDownResult {
  name: string;
  stateDir: string;
  /** False when there was nothing to undo. */
  found: boolean;
  processesStopped: number;
  namespacesDeleted: string[];
  usersDeleted: string[];
}

export async function labDown(opts: LabOptions = {}): Promise<LabDownResult> {
  requireRoot();
  await requireTools(['ip', 'userdel']);
  const lab = resolveLab(opts);
  return teardown(lab, lab.state);
}

/** What the lab made under its state dir; nothing else there is touched. */
const OWN_ENTRIES = [STATE_FILE, `${STATE_FILE}.tmp`, 'logs', 'hosts', CA_KEY_FILE];

export async function teardown(lab: Settled, state: LabState | undefined): Promise<LabDownResult> {
  const { name, stateDir, out, clock } = lab;
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  const present = await presentNamespaces(name);
  const recorded = (state?.namespaces ?? []).filter((ns) => present.includes(ns));
  const namespaces = [...new Set([...recorded, ...present])];
  const found =
    namespaces.length > 0 ||
    state !== undefined ||
    existsSync(stateDir) ||
    readActive()?.name === name;
  if (!found) {
    releaseActive(name);
    return {
      name,
      stateDir,
      found,
      processesStopped: 0,
      namespacesDeleted: [],
      usersDeleted: [],
    };
  }

  let stopped = 0;
  // With etcd in the lab, everything else stops first, while etcd still has its quorum: a
  // server on etcd revokes its lease as it stops, which would otherwise wait for etcd.
  const etcdLab = (state?.processes ?? []).some((p) => p.role === 'etcd');
  const firsts = (state?.processes ?? [])
    .filter((p) => etcdLab && p.role !== 'etcd' && p.pid !== undefined && isAlive(p.pid))
    .filter((p) => sameCommand(commandLine(p.pid!), p.argv))
    .map((p) => p.pid!);
  if (firsts.length > 0) {
    out(`stopping ${firsts.length} process(es) before etcd`);
    await attempt('stopping the processes before etcd', async () => {
      await stopPids(firsts, clock);
      stopped += firsts.length;
    });
  }
  out(`stopping processes in ${namespaces.length} namespace(s)`);
  for (const ns of namespaces) {
    await attempt(`stopping processes in ${ns}`, async () => {
      stopped += await emptyNamespace(ns, clock);
    });
  }
  // A recorded daemon outside every namespace (its namespace deleted by hand): same PID and
  // the same command line, so a reused PID is never signalled.
  const strays = (state?.processes ?? [])
    .filter((p) => p.pid !== undefined && isAlive(p.pid))
    .filter((p) => sameCommand(commandLine(p.pid!), p.argv))
    .map((p) => p.pid!);
  if (strays.length > 0) {
    const left = await stopPids(strays, clock);
    stopped += strays.length;
    if (left.length > 0) problems.push(`processes still alive: ${left.join(', ')}`);
  }

  // Hosts first, the switch last: the bridge goes once nothing is plugged into it.
  const ordered = [...namespaces].sort(
    (a, b) => Number(a.endsWith('-sw')) - Number(b.endsWith('-sw')),
  );
  out(`deleting namespaces: ${ordered.join(', ') || '(none)'}`);
  const deleted: string[] = [];
  for (const ns of ordered) {
    await attempt(`deleting namespace ${ns}`, async () => {
      await deleteNamespace(ns);
      deleted.push(ns);
    });
  }

  const usersDeleted: string[] = [];
  const active = readActive();
  const fromMarker = active?.name === name ? (active.usersCreated ?? []) : [];
  for (const user of new Set([...(state?.usersCreated ?? []), ...fromMarker])) {
    await attempt(`deleting user ${user}`, async () => {
      await deleteUser(user);
      usersDeleted.push(user);
    });
  }
  if (usersDeleted.length > 0) out(`deleted users: ${usersDeleted.join(', ')}`);

  await attempt(`removing ${stateDir}`, () => removeStateDir(stateDir));
  releaseActive(name);
  if (problems.length > 0)
    throw new LabError(`lab down left things behind: ${problems.join('; ')}`);
  return {
    name,
    stateDir,
    found,
    processesStopped: stopped,
    namespacesDeleted: deleted,
    usersDeleted,
  };
}

function sameCommand(actual: string[] | undefined, recorded: readonly string[]): boolean {
  return actual !== undefined && actual.join('\0') === recorded.join('\0');
}

/** Removes the lab's own entries, then the dir if that leaves it empty. */
function removeStateDir(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of OWN_ENTRIES) rmSync(join(dir, entry), { recursive: true, force: true });
  const rest = readdirSync(dir);
  if (rest.length > 0)
    throw new Error(`kept it: it holds files the lab did not make (${rest.join(', ')})`);
  rmdirSync(dir);
}
