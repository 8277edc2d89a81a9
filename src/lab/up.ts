/**
 * `lab up`: users, namespaces and bridge, then the server, the demo apps and one agent per
 * app host, each recorded in lab.json before it is made. Waits until every agent has joined
 * and registered its services. Any failure (or an abort) undoes everything made so far.
 *
 * The control plane is set up as in a real deployment: the server serves HTTPS on the lab
 * network (plain HTTP on its host's loopback only), and each agent joins with a single-use join
 * token made for its node, pinning the CA's fingerprint, then talks TLS with its own
 * certificate. Nothing plaintext crosses the lab network, except, with `--servers 3`, etcd's
 * own traffic between the server hosts (plain HTTP: a lab, not a deployment).
 *
 * With `--servers 3` each server host first runs one etcd member, then a Trellis server with
 * `--store etcd` over all three members and a CA encryption key file shared through the state
 * dir; every agent is given all three servers.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { teardown } from './down.js';
import {
  CA_KEY_FILE,
  DEFAULT_ETCD,
  etcdArgv,
  etcdEndpoints,
  requireEtcd,
  writeCaEncryptionKey,
} from './etcd.js';
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
import { etcdHealthy, leaderDisagreement } from './servers.js';
import {
  claimActive,
  defaultStateDir,
  refuseIfActive,
  updateActive,
  writeState,
  type LabProcess,
  type LabState,
} from './state.js';
import { LabError, requireRoot, requireTools, run, sleep } from './sys.js';
import {
  AGENT_DNS_ADDR,
  AGENT_HTTP_ADDR,
  DEFAULT_HOSTS,
  DEFAULT_LAB_NAME,
  DEFAULT_SERVERS,
  hostsProblem,
  LAB_USERS,
  labNameProblem,
  labTopology,
  labUsers,
  SERVER_HTTP_ADDR,
  serverHosts,
  serverHttpsAddr,
  serversProblem,
  type DemoService,
  type LabHost,
  type Topology,
} from './topology.js';
import { createUser, userExists, userIds, type UnixIds } from './users.js';
import { makeDirs } from '../core/make-dirs.js';

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
  const servers = opts.servers ?? DEFAULT_SERVERS;
  const problem = labNameProblem(name) ?? hostsProblem(hosts) ?? serversProblem(servers);
  if (problem) throw new LabError(problem);
  await requireTools(['ip', 'setpriv', 'useradd', 'userdel', 'id']);
  const topo = labTopology(name, hosts, servers);
  if (topo.store === 'etcd') await requireEtcd(opts.etcd ?? DEFAULT_ETCD);
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
    servers,
    phase: 'starting',
    namespaces: [],
    usersCreated: [],
    processes: [],
  };
  try {
    makeDirs(stateDir, 0o755);
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
  makeDirs(logs, 0o755);
  const dirs = (host: LabHost): { data: string; config: string } => {
    const base = join(lab.stateDir, 'hosts', host.name);
    const data = join(base, 'data');
    const config = join(base, 'config');
    // Made one level at a time: a recursive mkdir would give the parents 0700 too.
    makeDirs(base, 0o755);
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, agentIds.uid, agentIds.gid);
    mkdirSync(config, { mode: 0o755 });
    for (const s of host.services) copyFileSync(join(servicesDir, s.file), join(config, s.file));
    return { data, config };
  };
  const start: Starter = async (host, role, argv, as) => {
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

  const servers = serverHosts(topo);
  const serverDirs = new Map(servers.map((h) => [h.name, dirs(h)]));
  const storeArgs: string[] = [];
  if (topo.store === 'etcd') {
    await startEtcd(lab, opts, topo, state, timeoutMs, start, agentIds);
    const keyFile = join(lab.stateDir, CA_KEY_FILE);
    state.caEncryptionKeyFile = keyFile;
    writeState(state);
    writeCaEncryptionKey(keyFile, agentIds);
    storeArgs.push(
      ...['--store', 'etcd', '--etcd-endpoints', etcdEndpoints(topo)],
      ...['--ca-encryption-key-file', keyFile],
    );
  }
  const startServer = async (server: LabHost): Promise<void> => {
    lab.out(
      `starting server on ${server.name} (HTTPS ${serverHttpsAddr(server)}, HTTP ${SERVER_HTTP_ADDR} on the host only${topo.store === 'etcd' ? ', store etcd' : ''})`,
    );
    await start(
      server,
      'server',
      [
        ...trellis,
        'server',
        '--node',
        server.name,
        // Plain HTTP on the server host's loopback: for `lab status` and commands run there.
        '--bind',
        SERVER_HTTP_ADDR,
        // HTTPS (certificate from the mesh CA) on the lab network: what the agents join and use.
        '--https-bind',
        serverHttpsAddr(server),
        // Also what tells the servers apart (/v1/status/leader and peers): one per host.
        '--advertise',
        server.address,
        '--data-dir',
        serverDirs.get(server.name)!.data,
        // A lab is for trying things: no tokens needed until someone turns ACLs on (and so no
        // management token to make join tokens with either).
        '--acl-default-policy',
        'allow',
        ...storeArgs,
      ],
      { user: LAB_USERS.agent },
    );
  };
  const serverUp = (server: LabHost): Promise<void> => {
    const log = state.processes.find((p) => p.host === server.name && p.role === 'server')!.log;
    return waitFor(
      lab,
      state,
      opts,
      timeoutMs,
      `the server on ${server.name} to answer`,
      async () => {
        // The server prints this line once both its HTTP and its HTTPS listeners are up.
        if (!readFileSync(log, 'utf8').includes('trellis server https on ')) return false;
        const [leader] = await probeInNamespace(trellis[0]!, server.namespace, [
          `http://${SERVER_HTTP_ADDR}/v1/status/leader`,
        ]);
        return leader?.status === 200;
      },
    );
  };
  // The first server alone: on etcd it makes the mesh CA, which the others then load.
  await startServer(servers[0]!);
  await serverUp(servers[0]!);
  for (const server of servers.slice(1)) await startServer(server);
  for (const server of servers.slice(1)) await serverUp(server);
  if (servers.length > 1) {
    lab.out('waiting for the servers to agree on a leader');
    let last = '';
    await waitFor(
      lab,
      state,
      opts,
      timeoutMs,
      'the servers to agree on a leader',
      async () => {
        last = await leaderDisagreement(trellis[0]!, servers);
        return last === '';
      },
      () => last,
    );
  }

  let appIndex = 0;
  for (const host of topo.hosts.filter((h) => h.role === 'app')) {
    const { data, config } = dirs(host);
    // Each agent lists every server, starting at a different one, so the agents spread over
    // them; its tokens are made on its first server, which it joins through.
    const order = servers.map((_, i) => servers[(appIndex + i) % servers.length]!);
    appIndex++;
    const server = order[0]!;
    for (const s of host.services) {
      lab.out(`starting ${s.name} on ${host.name} (${s.listen}, user ${s.user})`);
      await start(
        host,
        s.name,
        [...trellis, 'demo-app', '--name', s.name, '--listen', s.listen, '--host', host.name],
        { user: s.user },
      );
    }
    // Each service registers with a token of its own (a service identity), written into the
    // host's copy of its definition: a joined agent's own token may only write its node.
    for (const s of host.services) {
      step();
      const token = await serviceToken(lab, server, host, s);
      withToken(join(config, s.file), token.SecretID, agentIds);
    }
    step();
    const ticket = await createJoinToken(lab, server, host);
    lab.out(
      `starting agent on ${host.name} (${host.address}), joining through ${serverHttpsAddr(server)} (join token accessor ${ticket.AccessorID})`,
    );
    await start(
      host,
      'agent',
      [
        ...trellis,
        'agent',
        // HTTPS only. The join token is spent on the first start; the identity it buys (agent
        // token, certificate, CA roots) is kept in the data dir, so a restarted agent with this
        // same command line loads it and does not join again.
        ...order.flatMap((h) => ['--server', serverHttpsAddr(h)]),
        '--join-token',
        ticket.SecretID,
        '--ca-fingerprint',
        ticket.CAFingerprint,
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
    catalogComplete(trellis[0]!, servers[0]!.namespace, topo),
  );
  // Registered is not in force: each agent applies its nftables table and its sidecars' checks
  // pass a little later, and `lab up` promises all of it when it returns.
  for (const host of topo.hosts.filter((h) => h.role === 'app')) {
    lab.out(`waiting for ${host.name}'s capture rules and sidecars`);
    let last = '';
    await waitFor(
      lab,
      state,
      opts,
      timeoutMs,
      `${host.name}'s capture rules and sidecars`,
      async () => {
        last = await hostNotReady(trellis[0]!, host);
        return last === '';
      },
      () => last,
    );
  }
}

/**
 * Why `host` is not ready yet ('' once it is): its agent's nftables table must be in force,
 * in sync, and capture every demo service's port, and every check on the agent must pass.
 */
async function hostNotReady(node: string, host: LabHost): Promise<string> {
  const [redirectA, checksA] = await probeInNamespace(node, host.namespace, [
    `http://${AGENT_HTTP_ADDR}/v1/agent/trellis/redirect`,
    `http://${AGENT_HTTP_ADDR}/v1/agent/checks`,
  ]);
  const redirect = jsonBody<{
    State?: string;
    Error?: string;
    Plan?: { inbound?: { port: number }[] };
  }>(redirectA);
  const checks = jsonBody<Record<string, { Name: string; Status: string }>>(checksA);
  if (!redirect || !checks) return 'the agent API does not answer yet';
  if (redirect.Error) return `capture rules: ${redirect.Error}`;
  if (redirect.State !== 'in-sync') return `capture rules ${redirect.State ?? 'unknown'}`;
  const captured = new Set((redirect.Plan?.inbound ?? []).map((i) => i.port));
  const missing = host.services.filter((s) => !captured.has(Number(s.listen.split(':').pop())));
  if (missing.length > 0) return `no capture yet for ${missing.map((s) => s.name).join(', ')}`;
  const failing = Object.values(checks).filter((c) => c.Status !== 'passing');
  if (failing.length > 0)
    return `checks not passing: ${failing.map((c) => `${c.Name} (${c.Status})`).join(', ')}`;
  return '';
}

/** Starts one recorded process in a host's namespace. */
type Starter = (host: LabHost, role: string, argv: string[], as: RunAs) => Promise<void>;

/**
 * One etcd member per server host (as the `trellis` user, data in hosts/<host>/etcd), all
 * started before any waits, since a member waits for a quorum of its peers; then waits until
 * every member sees a leader.
 */
async function startEtcd(
  lab: Settled,
  opts: LabOptions,
  topo: Topology,
  state: LabState,
  timeoutMs: number,
  start: Starter,
  owner: UnixIds,
): Promise<void> {
  const etcd = opts.etcd ?? DEFAULT_ETCD;
  const servers = serverHosts(topo);
  for (const host of servers) {
    const dataDir = join(lab.stateDir, 'hosts', host.name, 'etcd');
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, owner.uid, owner.gid);
    lab.out(`starting etcd member ${host.name} (${host.etcd?.clientUrl ?? '?'})`);
    await start(host, 'etcd', etcdArgv(etcd, topo, host, dataDir), { user: LAB_USERS.agent });
  }
  let sick: string[] = [];
  await waitFor(
    lab,
    state,
    opts,
    timeoutMs,
    'the etcd members to form a cluster',
    async () => {
      const healthy = await Promise.all(
        servers.map((h) => etcdHealthy(lab.trellis[0]!, h).catch(() => false)),
      );
      sick = servers.filter((_, i) => !healthy[i]).map((h) => h.name);
      return sick.length === 0;
    },
    () => `not healthy yet: ${sick.join(', ')}`,
  );
}

interface JoinToken {
  AccessorID: string;
  SecretID: string;
  CAFingerprint: string;
  JoinAddress?: string;
}

/**
 * `trellis ARGS --format json` run on the server host against the server's loopback API, as
 * root with no token: the ACL default policy is allow, which lets the anonymous token make
 * tokens, so the lab needs no management token.
 */
async function trellisOnServer<T>(lab: Settled, server: LabHost, args: string[]): Promise<T> {
  const { stdout } = await run(
    'ip',
    [
      'netns',
      'exec',
      server.namespace,
      // No token of the caller's ($TRELLIS_HTTP_TOKEN) may leak in: it could be refused.
      'env',
      '-u',
      'TRELLIS_HTTP_TOKEN',
      ...lab.trellis,
      ...args,
      '--format',
      'json',
      '--http-addr',
      SERVER_HTTP_ADDR,
    ],
    30_000,
  );
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new LabError(`\`trellis ${args.join(' ')}\` printed no JSON: ${stdout.slice(0, 200)}`);
  }
}

/**
 * A single-use join token for `host`: valid for that node name only, for the server's default
 * 15 minutes.
 */
async function createJoinToken(lab: Settled, server: LabHost, host: LabHost): Promise<JoinToken> {
  const token = await trellisOnServer<Partial<JoinToken>>(lab, server, [
    'acl',
    'token',
    'create',
    '--join',
    '--node',
    host.name,
    '--description',
    `lab ${lab.name}: ${host.name} joins`,
  ]);
  if (!token.SecretID || !token.CAFingerprint || !token.AccessorID)
    throw new LabError(`the join token for ${host.name} lacks its secret or the CA fingerprint`);
  if (token.JoinAddress !== serverHttpsAddr(server))
    throw new LabError(
      `the server on ${server.name} offers joins at ${token.JoinAddress ?? 'no HTTPS address'}, not ${serverHttpsAddr(server)}`,
    );
  return token as JoinToken;
}

/** A token with the service identity of `service` (it and its sidecar, read on the catalog). */
async function serviceToken(
  lab: Settled,
  server: LabHost,
  host: LabHost,
  service: DemoService,
): Promise<{ SecretID: string }> {
  const token = await trellisOnServer<{ SecretID?: string }>(lab, server, [
    'acl',
    'token',
    'create',
    '--service-identity',
    service.name,
    '--description',
    `lab ${lab.name}: ${service.name} on ${host.name}`,
  ]);
  if (!token.SecretID) throw new LabError(`the token for ${service.name} has no SecretID`);
  return { SecretID: token.SecretID };
}

/**
 * Puts `token = "..."` into the service block of a definition file (the host's copy), readable
 * by the agent's user only.
 */
function withToken(file: string, secret: string, owner: UnixIds): void {
  const text = readFileSync(file, 'utf8');
  const opening = /^service\s*\{[^\n]*\n/m.exec(text);
  if (!opening) throw new LabError(`${file}: no \`service {\` block to put the token in`);
  const at = opening.index + opening[0].length;
  const line = `  token = ${JSON.stringify(secret)} # made by trellis lab up\n`;
  chmodSync(file, 0o600); // before the secret is in it
  chownSync(file, owner.uid, owner.gid);
  writeFileSync(file, text.slice(0, at) + line + text.slice(at));
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
  why?: () => string,
): Promise<void> {
  const until = lab.clock.now() + timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new LabError('interrupted');
    const dead = state.processes.find((p) => p.pid !== undefined && !isAlive(p.pid));
    if (dead) throw new LabError(`${dead.role} on ${dead.host} exited (its log: ${dead.log})`);
    if (await ready().catch(() => false)) return;
    if (lab.clock.now() > until)
      throw new LabError(
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${why?.() ? `: ${why()}` : ''}`,
      );
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
      const server = ` server https://${serverHttpsAddr(h)} (http://${SERVER_HTTP_ADDR} on the host)${h.etcd ? `, etcd ${h.etcd.clientUrl}` : ''}`;
      return `  ${h.name.padEnd(7)} ${h.address.padEnd(12)} ns ${h.namespace}${h.role === 'server' ? server : svc}`;
    })
    .join('\n');
  const name = topo.name === DEFAULT_LAB_NAME ? '' : ` --name ${topo.name}`;
  const api = topo.hosts.some((h) => h.services.some((s) => s.name === 'api'));
  const servers = serverHosts(topo);
  const first = servers[0]!.name;
  const tries = [
    `trellis lab status${name}`,
    `trellis lab exec${name} app1 -- ip -br addr`,
    ...(api
      ? [
          `trellis lab exec${name} app1 --user ${LAB_USERS.web} -- curl -s http://api.service.consul/`,
        ]
      : []),
    `trellis lab exec${name} ${first} -- curl -s http://${SERVER_HTTP_ADDR}/v1/catalog/services`,
    ...(servers.length > 1
      ? [`trellis lab exec${name} ${first} -- curl -s http://${SERVER_HTTP_ADDR}/v1/status/leader`]
      : []),
    `trellis lab down${name}`,
  ];
  const layout =
    servers.length > 1
      ? `${servers.length} servers over a ${servers.length}-member etcd, ${topo.hosts.length - servers.length} app hosts`
      : `${topo.hosts.length - 1} app hosts`;
  return (
    `lab ${topo.name} is up (state in ${stateDir}; ${layout})\n` +
    `${hosts}\n` +
    `try:\n${tries.map((t) => `  ${t}`).join('\n')}`
  );
}
