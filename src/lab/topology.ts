/**
 * The lab's shape as data: which hosts exist, their namespaces, addresses and demo services.
 * Pure; everything else in src/lab works from a Topology.
 */

/** Benchmarking range (RFC 2544): never routed on the internet, so the lab cannot clash. */
export const LAB_SUBNET = '198.18.0.0/24';
export const LAB_PREFIX_LENGTH = 24;
/** The bridge's address in the switch namespace; every host's default route points at it. */
export const GATEWAY_ADDRESS = '198.18.0.1';
export const SERVER_ADDRESS = '198.18.0.10';
/**
 * The server's plain-HTTP API, on the server host's loopback only: for `lab up`'s readiness
 * checks, `lab status` and commands run on the server host (`lab exec server -- ...`).
 */
export const SERVER_HTTP_PORT = 8500;
export const SERVER_HTTP_ADDR = `127.0.0.1:${SERVER_HTTP_PORT}`;
/**
 * The server's HTTPS API on the lab network (certificate from the mesh CA): the only address
 * the agents use. They join with a join token and then talk TLS with their own certificates.
 */
export const SERVER_HTTPS_PORT = 8501;
export const SERVER_HTTPS_ADDR = `${SERVER_ADDRESS}:${SERVER_HTTPS_PORT}`;
/** Where each app host's agent serves its local API and DNS (inside that host only). */
export const AGENT_HTTP_ADDR = '127.0.0.1:8500';
export const AGENT_DNS_ADDR = '127.0.0.1:8600';
export const BRIDGE_NAME = 'br0';
export const HOST_INTERFACE = 'eth0';

/** etcd's client and peer ports, on each server host's lab address (`--servers 3`). */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** A server host's address in an etcd lab: 198.18.0.101, .102, .103, clear of the app hosts. */
const ETCD_SERVER_OCTET_BASE = 100;

export const DEFAULT_LAB_NAME = 'tlab';
export const DEFAULT_HOSTS = 3;
export const DEFAULT_SERVERS = 1;
/** One server on the embedded store, or three over a three-member etcd (a quorum of two). */
export const SERVER_COUNTS: readonly number[] = [1, 3];
export const MAX_HOSTS = 20;
/** tmpfs: a reboot removes the state together with the namespaces it describes. */
export const STATE_ROOT = '/run/trellis-lab';

/** The unix users the lab runs things as. */
export const LAB_USERS = {
  agent: 'trellis',
  web: 'trellis-web',
  api: 'trellis-api',
} as const;

export interface DemoService {
  name: 'web' | 'api';
  /** The unix user the app runs as, and the user its sidecar captures. */
  user: string;
  listen: string;
  /** The service definition file copied into the host's config dir. */
  file: string;
}

export interface LabHost {
  /** "server", "app1", ... */
  name: string;
  role: 'server' | 'app';
  namespace: string;
  address: string;
  /** The veth end on the bridge, in the switch namespace (at most 15 characters). */
  switchPort: string;
  services: DemoService[];
  /** The etcd member this server host runs (only in a lab with `--servers 3`). */
  etcd?: EtcdMember;
}

export interface EtcdMember {
  /** etcd's member name: the host's name. */
  name: string;
  /** What the Trellis servers connect to, on the host's lab address. */
  clientUrl: string;
  peerUrl: string;
}

export interface Topology {
  name: string;
  switchNamespace: string;
  /** "embedded": one server with its own log; "etcd": every server over the etcd members. */
  store: 'embedded' | 'etcd';
  hosts: LabHost[];
}

const WEB: DemoService = {
  name: 'web',
  user: LAB_USERS.web,
  listen: '127.0.0.1:8081',
  file: 'web.hcl',
};
const API: DemoService = {
  name: 'api',
  user: LAB_USERS.api,
  listen: '0.0.0.0:8080',
  file: 'api.hcl',
};

/** A lab name: short, and without "-" so `<name>-` prefixes never overlap another lab's. */
export function labNameProblem(name: string): string | undefined {
  if (!/^[a-z][a-z0-9]{0,11}$/.test(name))
    return `lab name "${name}" must be 1-12 lowercase letters or digits, starting with a letter`;
  return undefined;
}

export function hostsProblem(hosts: number): string | undefined {
  if (!Number.isSafeInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS)
    return `--hosts must be an integer from 1 to ${MAX_HOSTS} (got ${String(hosts)})`;
  return undefined;
}

export function serversProblem(servers: number): string | undefined {
  if (!SERVER_COUNTS.includes(servers))
    return `--servers must be 1 (one server, embedded store) or 3 (three servers over a three-member etcd) (got ${String(servers)})`;
  return undefined;
}

/**
 * The server hosts and `hosts` app hosts: app1 runs web, every other app host runs api. One
 * server is host "server" (198.18.0.10); three are "server1".."server3" (198.18.0.101-103),
 * each running one etcd member next to its Trellis server.
 */
export function labTopology(name: string, hosts: number, servers = DEFAULT_SERVERS): Topology {
  const problem = labNameProblem(name) ?? hostsProblem(hosts) ?? serversProblem(servers);
  if (problem) throw new Error(problem);
  const list: LabHost[] = [];
  if (servers === 1) list.push(host(name, 'server', 'server', 10, []));
  else
    for (let i = 1; i <= servers; i++) {
      const h = host(name, `server${i}`, 'server', ETCD_SERVER_OCTET_BASE + i, []);
      h.etcd = {
        name: h.name,
        clientUrl: `http://${h.address}:${ETCD_CLIENT_PORT}`,
        peerUrl: `http://${h.address}:${ETCD_PEER_PORT}`,
      };
      list.push(h);
    }
  for (let i = 1; i <= hosts; i++) {
    list.push(host(name, `app${i}`, 'app', 10 + i, [i === 1 ? WEB : API]));
  }
  return {
    name,
    switchNamespace: `${name}-sw`,
    store: servers === 1 ? 'embedded' : 'etcd',
    hosts: list,
  };
}

export function serverHosts(topo: Topology): LabHost[] {
  return topo.hosts.filter((h) => h.role === 'server');
}

/** A server host's HTTPS API on the lab network: what agents join through and use. */
export function serverHttpsAddr(server: LabHost): string {
  return `${server.address}:${SERVER_HTTPS_PORT}`;
}

function host(
  lab: string,
  name: string,
  role: LabHost['role'],
  lastOctet: number,
  services: DemoService[],
): LabHost {
  return {
    name,
    role,
    namespace: `${lab}-${name}`,
    address: `198.18.0.${lastOctet}`,
    switchPort: `v-${name}`,
    services,
  };
}

/** The namespace names a lab of this name can have, for discovery without a state file. */
export function isLabNamespace(lab: string, ns: string): boolean {
  if (!ns.startsWith(`${lab}-`)) return false;
  return /^(sw|server[1-9]?|app\d{1,2})$/.test(ns.slice(lab.length + 1));
}

/** The users a topology needs. */
export function labUsers(topo: Topology): string[] {
  const users = new Set<string>([LAB_USERS.agent]);
  for (const h of topo.hosts) for (const s of h.services) users.add(s.user);
  return [...users];
}
