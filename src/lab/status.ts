/** `lab status`: hosts, namespaces, addresses, processes, and the server's catalog. */
import { presentNamespaces, resolveLab, knownTopology, type LabOptions } from './options.js';
import { isAlive } from './processes.js';
import { jsonBody, probeInNamespace } from './probe.js';
import { requireRoot, requireTools } from './sys.js';
import { SERVER_HTTP_ADDR, type LabHost } from './topology.js';

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

export interface LabStatus {
  name: string;
  stateDir: string;
  /** "down": no state and no namespaces. */
  phase: 'starting' | 'up' | 'failed' | 'down' | 'unknown';
  switchNamespace?: { name: string; present: boolean };
  hosts: HostStatus[];
  /** From the server's catalog, when it answered. */
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
  };
  const server = topo.hosts.find((h) => h.role === 'server')!;
  if (present.includes(server.namespace)) {
    try {
      status.services = await catalogServices(lab.trellis[0]!, server.namespace);
    } catch (err) {
      status.catalogError = err instanceof Error ? err.message : String(err);
    }
  }
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
  if (s.services) {
    lines.push('catalog services:');
    for (const svc of s.services)
      lines.push(`  ${svc.name.padEnd(20)} ${svc.instances.join(', ') || '(no instances)'}`);
  } else if (s.catalogError) {
    lines.push(`catalog: unavailable (${s.catalogError})`);
  }
  return `${lines.join('\n')}\n`;
}
