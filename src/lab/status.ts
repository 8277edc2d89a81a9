/**
 * `lab status`: hosts, namespaces, addresses, processes, the servers (which one leads) and
 * etcd members, and the catalog.
 */
import { presentNamespaces, resolveLab, knownTopology, type LabOptions } from './options.js';
import { isAlive } from './processes.js';
import { jsonBody, probeInNamespace } from './probe.js';
import { etcdHealthy, leaderHost, serverViews } from './servers.js';
import { requireRoot, requireTools } from './sys.js';
import {
  SERVER_HTTP_ADDR,
  serverHosts,
  serverHttpsAddr,
  type LabHost,
  type Topology,
} from './topology.js';

export interface ProcessStatus {
  role: string;
  user: string;
  pid?: number;
  alive: boolean;
  log: string;
}

export interface HostStatus {
  name: string;
  role: LabHost['role'];
  namespace: string;
  address: string;
  present: boolean;
  processes: ProcessStatus[];
}

export interface ServiceStatus {
  name: string;
  /** "node address:port" of each instance. */
  instances: string[];
}

export interface ServerStatus {
  host: string;
  /** Its HTTPS API on the lab network. */
  https: string;
  /** The leader it names ("198.18.0.101:8300", "" for none); absent when it did not answer. */
  leader?: string;
  /** How many live servers it lists in /v1/status/peers; absent when it did not answer. */
  peers?: number;
}

export interface EtcdMemberStatus {
  host: string;
  clientUrl: string;
  /** Its /health says true (it is up and sees an etcd leader). */
  healthy: boolean;
}

export interface LabStatus {
  name: string;
  stateDir: string;
  /** "down": no state and no namespaces. */
  phase: 'starting' | 'up' | 'failed' | 'down' | 'unknown';
  switchNamespace?: { name: string; present: boolean };
  hosts: HostStatus[];
  /** "embedded" (one server) or "etcd" (`--servers 3`). */
  store?: Topology['store'];
  /** What each server with a namespace says about leadership. */
  servers?: ServerStatus[];
  /** The host of the leader the answering servers name (the first named, if they differ). */
  leader?: string;
  etcd?: EtcdMemberStatus[];
  /** From a server's catalog (the first that answered). */
  services?: ServiceStatus[];
  catalogError?: string;
}

export async function labStatus(opts: LabOptions = {}): Promise<LabStatus> {
  requireRoot();
  await requireTools(['ip']);
  const lab = resolveLab(opts);
  const present = await presentNamespaces(lab.name);
  const topo = knownTopology(lab, present);
  const base = { name: lab.name, stateDir: lab.stateDir };
  if (!topo) return { ...base, phase: 'down', hosts: [] };
  const hosts: HostStatus[] = topo.hosts.map((h) => ({
    name: h.name,
    role: h.role,
    namespace: h.namespace,
    address: h.address,
    present: present.includes(h.namespace),
    processes: (lab.state?.processes ?? [])
      .filter((p) => p.host === h.name)
      .map((p) => ({
        role: p.role,
        user: p.user,
        ...(p.pid !== undefined ? { pid: p.pid } : {}),
        alive: p.pid !== undefined && isAlive(p.pid),
        log: p.log,
      })),
  }));
  const status: LabStatus = {
    ...base,
    phase: lab.state?.phase ?? 'unknown',
    switchNamespace: {
      name: topo.switchNamespace,
      present: present.includes(topo.switchNamespace),
    },
    hosts,
    store: topo.store,
  };
  const node = lab.trellis[0]!;
  const servers = serverHosts(topo).filter((h) => present.includes(h.namespace));
  const views = await serverViews(node, servers);
  status.servers = servers.map((h, i) => ({
    host: h.name,
    https: serverHttpsAddr(h),
    ...(views[i]!.leader !== undefined ? { leader: views[i]!.leader } : {}),
    ...(views[i]!.peers !== undefined ? { peers: views[i]!.peers.length } : {}),
  }));
  const named = views.find((v) => v.leader)?.leader;
  const leader = leaderHost(servers, named);
  if (leader) status.leader = leader.name;
  if (topo.store === 'etcd') {
    const etcd = serverHosts(topo).filter((h) => h.etcd);
    const healthy = await Promise.all(
      etcd.map((h) =>
        present.includes(h.namespace) ? etcdHealthy(node, h).catch(() => false) : false,
      ),
    );
    status.etcd = etcd.map((h, i) => ({
      host: h.name,
      clientUrl: h.etcd!.clientUrl,
      healthy: healthy[i]!,
    }));
  }
  // The catalog from the first server that answers (one may have been killed).
  const errors: string[] = [];
  for (const server of servers) {
    try {
      status.services = await catalogServices(node, server.namespace);
      break;
    } catch (err) {
      errors.push(`${server.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!status.services && errors.length > 0) status.catalogError = errors.join('; ');
  return status;
}

async function catalogServices(node: string, ns: string): Promise<ServiceStatus[]> {
  const base = `http://${SERVER_HTTP_ADDR}/v1/catalog`;
  const [list] = await probeInNamespace(node, ns, [`${base}/services`]);
  const names = jsonBody<Record<string, string[]>>(list);
  if (!names) throw new Error(`the server did not answer (${list?.body ?? 'no answer'})`);
  const sorted = Object.keys(names).sort();
  const answers = await probeInNamespace(
    node,
    ns,
    sorted.map((s) => `${base}/service/${encodeURIComponent(s)}`),
  );
  return sorted.map((name, i) => {
    type Instance = { Node: string; Address: string; ServiceAddress: string; ServicePort: number };
    const instances = jsonBody<Instance[]>(answers[i]) ?? [];
    return {
      name,
      instances: instances.map(
        (x) =>
          `${x.Node} ${x.ServiceAddress || x.Address}${x.ServicePort ? `:${x.ServicePort}` : ''}`,
      ),
    };
  });
}

/** The status as the CLI prints it. */
export function formatStatus(s: LabStatus): string {
  if (s.phase === 'down')
    return `lab ${s.name} is not up (no namespaces, no state in ${s.stateDir})\n`;
  const lines = [`lab ${s.name}: ${s.phase} (state in ${s.stateDir})`];
  if (s.switchNamespace)
    lines.push(
      `  switch  ns ${s.switchNamespace.name} ${s.switchNamespace.present ? 'present' : 'MISSING'}`,
    );
  for (const h of s.hosts) {
    lines.push(
      `  ${h.name.padEnd(7)} ${h.address.padEnd(12)} ns ${h.namespace} ${h.present ? 'present' : 'MISSING'}`,
    );
    for (const p of h.processes) {
      const pid = p.pid === undefined ? 'not started' : `pid ${p.pid}`;
      lines.push(
        `      ${p.role.padEnd(8)} ${pid.padEnd(12)} ${p.alive ? 'alive' : 'DEAD'}  user ${p.user}`,
      );
    }
  }
  if (s.servers && s.servers.length > 0) {
    lines.push(`servers (store ${s.store ?? 'embedded'}; leader ${s.leader ?? 'none known'}):`);
    for (const v of s.servers) {
      const says =
        v.leader === undefined
          ? 'no answer'
          : `names leader "${v.leader}", ${v.peers ?? 0} peer(s)${v.host === s.leader ? '  (leader)' : ''}`;
      lines.push(`  ${v.host.padEnd(8)} https ${v.https.padEnd(18)} ${says}`);
    }
  }
  if (s.etcd) {
    lines.push('etcd members:');
    for (const m of s.etcd)
      lines.push(
        `  ${m.host.padEnd(8)} ${m.clientUrl.padEnd(26)} ${m.healthy ? 'healthy' : 'NOT HEALTHY'}`,
      );
  }
  if (s.services) {
    lines.push('catalog services:');
    for (const svc of s.services)
      lines.push(`  ${svc.name.padEnd(20)} ${svc.instances.join(', ') || '(no instances)'}`);
  } else if (s.catalogError) {
    lines.push(`catalog: unavailable (${s.catalogError})`);
  }
  return `${lines.join('\n')}\n`;
}
