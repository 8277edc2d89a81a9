/**
 * lab.json: what a lab has made, written ahead of each step (a namespace or user is recorded
 * before it is created), so `lab down` can undo a lab whose `up` crashed or was killed at any
 * point. Also the machine-wide marker that allows one lab at a time.
 */
import { existsSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './sys.js';
import { STATE_ROOT } from './topology.js';
import { makeDirs } from '../core/make-dirs.js';

export interface LabProcess {
  host: string;
  /** "server", "etcd", "agent", or the demo service's name. */
  role: string;
  namespace: string;
  user: string;
  /** Set once spawned; a process without one may still exist (found through its namespace). */
  pid?: number;
  /** The command line the namespace runs (after `ip netns exec` and setpriv exec'd it). */
  argv: string[];
  log: string;
}

export interface LabState {
  version: 1;
  name: string;
  stateDir: string;
  hosts: number;
  /** Server hosts: 1 (embedded store), or 3 over etcd. Absent in state from before: 1. */
  servers?: number;
  /** The CA encryption key file every server of an etcd lab shares (in the state dir). */
  caEncryptionKeyFile?: string;
  phase: 'starting' | 'up' | 'failed';
  /** Namespaces recorded before creation; some may not exist. */
  namespaces: string[];
  /** Users this lab created (recorded before useradd); `down` deletes exactly these. */
  usersCreated: string[];
  processes: LabProcess[];
}

export const STATE_FILE = 'lab.json';
/** Names the one lab that is up, and where its state is. */
export const ACTIVE_FILE = join(STATE_ROOT, 'active.json');

export interface ActiveLab {
  name: string;
  stateDir: string;
  /** A second record of the users the lab created, for a `down` without lab.json. */
  usersCreated?: string[];
}

export function defaultStateDir(name: string): string {
  return join(STATE_ROOT, name);
}

export function readState(stateDir: string): LabState | undefined {
  const file = join(stateDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as LabState;
    return parsed.version === 1 ? parsed : undefined;
  } catch {
    return undefined; // torn or foreign: down falls back to discovering namespaces
  }
}

/** Written to a temporary file and renamed, so a reader never sees half a file. */
export function writeState(state: LabState): void {
  const file = join(state.stateDir, STATE_FILE);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

export function readActive(): ActiveLab | undefined {
  try {
    const v = JSON.parse(readFileSync(ACTIVE_FILE, 'utf8')) as Partial<ActiveLab>;
    if (typeof v.name === 'string' && typeof v.stateDir === 'string') {
      const users = Array.isArray(v.usersCreated)
        ? v.usersCreated.filter((u): u is string => typeof u === 'string')
        : [];
      return { name: v.name, stateDir: v.stateDir, usersCreated: users };
    }
  } catch {
    // absent or unreadable: no lab is known to be up
  }
  return undefined;
}

function alreadyUp(): LabError {
  const other = readActive();
  return new LabError(
    `a lab is already up on this machine${other ? ` ("${other.name}", state in ${other.stateDir})` : ''}: ` +
      `only one lab may run at a time; run \`trellis lab down${other ? ` --name ${other.name}` : ''}\` first`,
  );
}

/** The early, friendly check; claimActive is the one that settles a race. */
export function refuseIfActive(): void {
  if (existsSync(ACTIVE_FILE)) throw alreadyUp();
}

/** Claims the machine for one lab; the exclusive create makes two concurrent `up`s safe. */
export function claimActive(lab: ActiveLab): void {
  makeDirs(STATE_ROOT, 0o755);
  try {
    writeFileSync(ACTIVE_FILE, `${JSON.stringify(lab)}\n`, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    throw alreadyUp();
  }
}

/** Records in the marker too what lab.json records (write-ahead, like lab.json). */
export function updateActive(lab: ActiveLab): void {
  writeFileSync(`${ACTIVE_FILE}.tmp`, `${JSON.stringify(lab)}\n`, { mode: 0o644 });
  renameSync(`${ACTIVE_FILE}.tmp`, ACTIVE_FILE);
}

/** Releases the marker if it names this lab, and the state root if nothing else is in it. */
export function releaseActive(name: string): void {
  const active = readActive();
  if (active === undefined || active.name === name) rmSync(ACTIVE_FILE, { force: true });
  rmSync(`${ACTIVE_FILE}.tmp`, { force: true });
  try {
    rmdirSync(STATE_ROOT);
  } catch {
    // not empty (another state dir, or a file someone put there) or already gone
  }
}
