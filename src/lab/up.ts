/**
 * `lab up`: users, namespaces and bridge, then the server, the demo apps and one agent per
 * app host, each recorded in lab.json before it is made. Waits until every agent has joined
 * and registered its services. Any failure (or an abort) undoes everything made so far.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { teardown } from './down.js';
import { createHost, createSwitch } from './network.js';
import {
  defaultServicesDir,
  presentNamespaces,
  settle,
  type LabOptions,
  type Settled,
} from './options.js';
import { isAlive, spawnDetached, type RunAs } from './processes.js';
import { jsonBody, probeInNamespace } from './probe.js';
import {
  claimActive,
  defaultStateDir,
  refuseIfActive,
  updateActive,
  writeState,
  type LabProcess,
  type LabState,
} from './state.js';
import { LabError, requireRoot, requireTools, sleep } from './sys.js';
import {
  AGENT_DNS_ADDR,
  AGENT_HTTP_ADDR,
  DEFAULT_HOSTS,
  DEFAULT_LAB_NAME,
  hostsProblem,
  LAB_USERS,
  labNameProblem,
  labTopology,
  labUsers,
  SERVER_ADDRESS,
  SERVER_HTTP_ADDR,
  type LabHost,
  type Topology,
} from './topology.js';
import { createUser, userExists, userIds } from './users.js';

export interface LabUpResult {
  name: string;
  stateDir: string;
  topology: Topology;
  state: LabState;
}

export async function labUp(opts: LabOptions = {}): Promise<LabUpResult> {
  requireRoot();
  const name = opts.name ?? DEFAULT_LAB_NAME;
  const hosts = opts.hosts ?? DEFAULT_HOSTS;
  const problem = labNameProblem(name) ?? hostsProblem(hosts);
  if (problem) throw new LabError(problem);
  await requireTools(['ip', 'setpriv', 'useradd', 'userdel', 'id']);
  const topo = labTopology(name, hosts);
  const stateDir = resolve(opts.stateDir ?? defaultStateDir(name));
  const servicesDir = resolve(opts.servicesDir ?? defaultServicesDir());
  for (const file of new Set(topo.hosts.flatMap((h) => h.services.map((s) => s.file)))) {
    if (!existsSync(join(servicesDir, file)))
      throw new LabError(`service definition ${join(servicesDir, file)} not found`);
  }
  refuseIfActive();
  const leftovers = await presentNamespaces(name);
  if (leftovers.length > 0)
    throw new LabError(
      `namespaces of a lab "${name}" already exist (${leftovers.join(', ')}): run \`trellis lab down --name ${name}\` first`,
    );
  if (existsSync(stateDir) && readdirSync(stateDir).length > 0)
    throw new LabError(`state dir ${stateDir} is not empty: use another --state-dir`);

  claimActive({ name, stateDir });
  const lab = settle(opts, name, stateDir);
  const state: LabState = {
    version: 1,
    name,
    stateDir,
    hosts,
    phase: 'starting',
    namespaces: [],
    usersCreated: [],
    processes: [],
  };
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o755 });
    chmodSync(stateDir, 0o755); // the lab's users must reach their data and config dirs
    writeState(state);
    await build(lab, opts, topo, state, servicesDir);
    state.phase = 'up';
    writeState(state);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    lab.out(`lab up failed: ${why}`);
    printDeadLogs(lab, state);
    lab.out('undoing what was made');
    state.phase = 'failed';
    try {
      writeState(state);
    } catch {
      // the state dir itself may be what failed; teardown works from memory
    }
    await teardown(lab, state).catch((e: unknown) =>
      lab.out(e instanceof Error ? e.message : String(e)),
    );
    throw new LabError(`lab up failed: ${why}`, { cause: err });
  }
  lab.out(readyText(topo, stateDir));
  return { name, stateDir, topology: topo, state };
}

async function build(
  lab: Settled,
  opts: LabOptions,
  topo: Topology,
  state: LabState,
  servicesDir: string,
): Promise<void> {
  const step = (): void => {
    if (opts.signal?.aborted) throw new LabError('interrupted');
  };
  for (const user of labUsers(topo)) {
    if (await userExists(user)) continue;
    lab.out(`creating user ${user}`);
    state.usersCreated.push(user);
    writeState(state);
    updateActive({ name: lab.name, stateDir: lab.stateDir, usersCreated: state.usersCreated });
    await createUser(user);
  }
  step();

  const all = [topo.switchNamespace, ...topo.hosts.map((h) => h.namespace)];
  lab.out(`creating network namespaces: ${all.join(', ')}`);
  state.namespaces.push(topo.switchNamespace);
  writeState(state);
  await createSwitch(topo);
  for (const host of topo.hosts) {
    step();
    state.namespaces.push(host.namespace);
    writeState(state);
    await createHost(topo, host);
  }

  const agentIds = await userIds(LAB_USERS.agent);
  const logs = join(lab.stateDir, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o755 });
  const dirs = (host: LabHost): { data: string; config: string } => {
    const base = join(lab.stateDir, 'hosts', host.name);
    const data = join(base, 'data');
    const config = join(base, 'config');
    // Made one level at a time: a recursive mkdir would give the parents 0700 too.
    mkdirSync(base, { recursive: true, mode: 0o755 });
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, agentIds.uid, agentIds.gid);
    mkdirSync(config, { mode: 0o755 });
    for (const s of host.services) copyFileSync(join(servicesDir, s.file), join(config, s.file));
    return { data, config };
  };
  const start = async (host: LabHost, role: string, argv: string[], as: RunAs): Promise<void> => {
    step();
    const proc: LabProcess = {
      host: host.name,
      role,
      namespace: host.namespace,
      user: as.user,
      argv,
      log: join(logs, `${host.name}-${role}.log`),
    };
    state.processes.push(proc);
    writeState(state);
    proc.pid = await spawnDetached(host.namespace, argv, as, proc.log);
    writeState(state);
  };
  const trellis = [...lab.trellis];
  const timeoutMs = opts.readyTimeoutMs ?? 90_000;

  const server = topo.hosts.find((h) => h.role === 'server')!;
  lab.out(`starting server on ${server.name} (${SERVER_HTTP_ADDR})`);
  const serverDirs = dirs(server);
  await start(
    server,
    'server',
    [
      ...trellis,
      'server',
      '--node',
      server.name,
      '--bind',
      SERVER_HTTP_ADDR,
      '--advertise',
      SERVER_ADDRESS,
      '--data-dir',
      serverDirs.data,
      // A lab is for trying things: no tokens needed until someone turns ACLs on.
      '--acl-default-policy',
      'allow',
    ],
    { user: LAB_USERS.agent },
  );
  await waitFor(lab, state, opts, timeoutMs, 'the server to answer', async () => {
    const [leader] = await probeInNamespace(trellis[0]!, server.namespace, [
      `http://${SERVER_HTTP_ADDR}/v1/status/leader`,
    ]);
    return leader?.status === 200;
  });

  for (const host of topo.hosts.filter((h) => h.role === 'app')) {
    const { data, config } = dirs(host);
    for (const s of host.services) {
      lab.out(`starting ${s.name} on ${host.name} (${s.listen}, user ${s.user})`);
      await start(
        host,
        s.name,
        [...trellis, 'demo-app', '--name', s.name, '--listen', s.listen, '--host', host.name],
        { user: s.user },
      );
    }
    lab.out(`starting agent on ${host.name} (${host.address})`);
    await start(
      host,
      'agent',
      [
        ...trellis,
        'agent',
        '--server',
        SERVER_HTTP_ADDR,
        '--node',
        host.name,
        '--advertise',
        host.address,
        '--data-dir',
        data,
        '--config-dir',
        config,
        '--bind',
        AGENT_HTTP_ADDR,
        '--dns-bind',
        AGENT_DNS_ADDR,
      ],
      // The agent applies nftables rules in its host's namespace: it needs CAP_NET_ADMIN.
      { user: LAB_USERS.agent, caps: ['net_admin'] },
    );
  }

  lab.out('waiting for the agents to join and register their services');
  await waitFor(lab, state, opts, timeoutMs, 'agents and services in the catalog', () =>
    catalogComplete(trellis[0]!, server.namespace, topo),
  );
}

/** Every app node joined, every service and sidecar registered, each api instance too. */
async function catalogComplete(node: string, ns: string, topo: Topology): Promise<boolean> {
  const base = `http://${SERVER_HTTP_ADDR}/v1/catalog`;
  const [nodesA, servicesA, apiA] = await probeInNamespace(node, ns, [
    `${base}/nodes`,
    `${base}/services`,
    `${base}/service/api`,
  ]);
  const nodes = jsonBody<{ Node: string }[]>(nodesA);
  const services = jsonBody<Record<string, string[]>>(servicesA);
  const api = jsonBody<unknown[]>(apiA);
  if (!nodes || !services || !api) return false;
  const apps = topo.hosts.filter((h) => h.role === 'app');
  if (!apps.every((h) => nodes.some((n) => n.Node === h.name))) return false;
  const names = apps.flatMap((h) => h.services.map((s) => s.name));
  if (!names.every((s) => s in services && `${s}-sidecar-proxy` in services)) return false;
  return api.length === names.filter((s) => s === 'api').length;
}

async function waitFor(
  lab: Settled,
  state: LabState,
  opts: LabOptions,
  timeoutMs: number,
  what: string,
  ready: () => Promise<boolean>,
): Promise<void> {
  const until = lab.clock.now() + timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new LabError('interrupted');
    const dead = state.processes.find((p) => p.pid !== undefined && !isAlive(p.pid));
    if (dead) throw new LabError(`${dead.role} on ${dead.host} exited (its log: ${dead.log})`);
    if (await ready().catch(() => false)) return;
    if (lab.clock.now() > until)
      throw new LabError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`);
    await sleep(lab.clock, 300);
  }
}

/** The end of each dead process's log, since `undo` removes the logs. */
function printDeadLogs(lab: Settled, state: LabState): void {
  for (const p of state.processes) {
    if (p.pid === undefined || isAlive(p.pid)) continue;
    let text = '';
    try {
      text = readFileSync(p.log, 'utf8');
    } catch {
      continue;
    }
    const tail = text.trimEnd().split('\n').slice(-15);
    lab.out(`--- last lines of ${p.role} on ${p.host} ---\n${tail.join('\n')}`);
  }
}

function readyText(topo: Topology, stateDir: string): string {
  const hosts = topo.hosts
    .map((h) => {
      const svc = h.services.map((s) => ` ${s.name} (${s.listen}, user ${s.user})`).join('');
      return `  ${h.name.padEnd(7)} ${h.address.padEnd(12)} ns ${h.namespace}${h.role === 'server' ? ` server ${SERVER_HTTP_ADDR}` : `${svc}`}`;
    })
    .join('\n');
  const name = topo.name === DEFAULT_LAB_NAME ? '' : ` --name ${topo.name}`;
  const api = topo.hosts.some((h) => h.services.some((s) => s.name === 'api'));
  const tries = [
    `trellis lab status${name}`,
    `trellis lab exec${name} app1 -- ip -br addr`,
    ...(api
      ? [
          `trellis lab exec${name} app1 --user ${LAB_USERS.web} -- curl -s http://api.service.consul/`,
        ]
      : []),
    `trellis lab exec${name} server -- curl -s http://${SERVER_HTTP_ADDR}/v1/catalog/services`,
    `trellis lab down${name}`,
  ];
  return (
    `lab ${topo.name} is up (state in ${stateDir}; ${topo.hosts.length - 1} app hosts)\n` +
    `${hosts}\n` +
    `try:\n${tries.map((t) => `  ${t}`).join('\n')}`
  );
}
