/**
 * What every lab command takes, and finding the lab a command means: the one named, else the
 * one that is up (the active marker), else the default.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock, type Clock } from '../core/index.js';
import { listNamespaces } from './network.js';
import { defaultStateDir, readActive, readState, type LabState } from './state.js';
import { LabError } from './sys.js';
import {
  DEFAULT_LAB_NAME,
  isLabNamespace,
  labNameProblem,
  labTopology,
  type Topology,
} from './topology.js';

export interface LabOptions {
  /** Lab name, the namespace prefix (default "tlab", or the lab that is up). */
  name?: string;
  /** Where lab.json, logs, data and config dirs go (default /run/trellis-lab/<name>). */
  stateDir?: string;
  /** App hosts for `up` (default 3). */
  hosts?: number;
  /** Servers for `up`: 1 (default, embedded store) or 3 (over a three-member etcd). */
  servers?: number;
  /** How to run etcd for `up --servers 3` (default: `etcd` on PATH, Debian's etcd-server). */
  etcd?: string;
  /** How to run trellis: [node, .../dist/src/bin/trellis.js] (default: this build's). */
  trellis?: readonly string[];
  /** Where web.hcl and api.hcl are (default: deploy/lab/services of this checkout). */
  servicesDir?: string;
  /** Progress lines (without newline); default: none. */
  out?: (line: string) => void;
  /** Aborting `up` stops it and undoes what it made. */
  signal?: AbortSignal;
  clock?: Clock;
  /** How long `up` waits for the server and the agents (default 90 s). */
  readyTimeoutMs?: number;
}

/** The `trellis` command of this build: node plus dist/src/bin/trellis.js. */
export function defaultTrellis(): string[] {
  return [process.execPath, fileURLToPath(new URL('../bin/trellis.js', import.meta.url))];
}

/** deploy/lab/services next to the dist/ this module was built into. */
export function defaultServicesDir(): string {
  return fileURLToPath(new URL('../../../deploy/lab/services/', import.meta.url));
}

export interface Settled {
  name: string;
  stateDir: string;
  trellis: readonly string[];
  out: (line: string) => void;
  clock: Clock;
}

export function settle(opts: LabOptions, name: string, stateDir: string): Settled {
  return {
    name,
    stateDir,
    trellis: opts.trellis ?? defaultTrellis(),
    out: opts.out ?? (() => {}),
    clock: opts.clock ?? systemClock,
  };
}

export interface ResolvedLab extends Settled {
  state: LabState | undefined;
}

/** The lab an existing-lab command (down, status, exec) acts on. */
export function resolveLab(opts: LabOptions): ResolvedLab {
  if (opts.name !== undefined) {
    const problem = labNameProblem(opts.name);
    if (problem) throw new LabError(problem);
  }
  const active = readActive();
  let name: string;
  let stateDir: string;
  if (opts.stateDir !== undefined) {
    stateDir = resolve(opts.stateDir);
    name = opts.name ?? readState(stateDir)?.name ?? active?.name ?? DEFAULT_LAB_NAME;
  } else if (active && (opts.name === undefined || opts.name === active.name)) {
    ({ name, stateDir } = active);
  } else {
    name = opts.name ?? DEFAULT_LAB_NAME;
    stateDir = defaultStateDir(name);
  }
  return { ...settle(opts, name, stateDir), state: readState(stateDir) };
}

/** The lab's namespaces that exist now. */
export async function presentNamespaces(name: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => isLabNamespace(name, ns));
}

/** The topology from lab.json, else guessed from the namespaces present; undefined if none. */
export function knownTopology(lab: ResolvedLab, present: readonly string[]): Topology | undefined {
  if (lab.state) return labTopology(lab.name, lab.state.hosts, lab.state.servers ?? 1);
  const apps = present
    .map((ns) => /-app(\d+)$/.exec(ns)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  if (present.length === 0) return undefined;
  const servers = present.some((ns) => /-server\d$/.test(ns)) ? 3 : 1;
  return labTopology(lab.name, Math.max(1, ...apps), servers);
}
