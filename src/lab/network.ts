/**
 * The lab's network: one switch namespace holding a bridge, one namespace per host joined to
 * it by a veth pair. Every link is created inside the switch namespace and its peer moved
 * straight into the host namespace, so nothing appears in the root network namespace.
 */
import { run } from './sys.js';
import {
  BRIDGE_NAME,
  GATEWAY_ADDRESS,
  HOST_INTERFACE,
  LAB_PREFIX_LENGTH,
  type LabHost,
  type Topology,
} from './topology.js';

/** The names in `ip netns list` ("name" or "name (id: 3)"). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

async function ipn(ns: string, args: readonly string[]): Promise<void> {
  await run('ip', ['-n', ns, ...args]);
}

export async function addNamespace(ns: string): Promise<void> {
  await run('ip', ['netns', 'add', ns]);
  await ipn(ns, ['link', 'set', 'lo', 'up']);
}

/** The switch: a bridge with the gateway address, and no uplink (nothing leaves the lab). */
export async function createSwitch(topo: Topology): Promise<void> {
  const sw = topo.switchNamespace;
  await addNamespace(sw);
  await ipn(sw, ['link', 'add', BRIDGE_NAME, 'type', 'bridge']);
  await ipn(sw, ['addr', 'add', `${GATEWAY_ADDRESS}/${LAB_PREFIX_LENGTH}`, 'dev', BRIDGE_NAME]);
  await ipn(sw, ['link', 'set', BRIDGE_NAME, 'up']);
}

/**
 * A host: its namespace, eth0 on the bridge, its address, and a default route via the
 * gateway, so connections to mesh virtual IPs (240.0.0.0/4) have a route and reach the
 * nftables output hook.
 */
export async function createHost(topo: Topology, host: LabHost): Promise<void> {
  const sw = topo.switchNamespace;
  await addNamespace(host.namespace);
  await ipn(sw, [
    'link',
    'add',
    host.switchPort,
    'type',
    'veth',
    'peer',
    'name',
    HOST_INTERFACE,
    'netns',
    host.namespace,
  ]);
  await ipn(sw, ['link', 'set', host.switchPort, 'master', BRIDGE_NAME, 'up']);
  const ns = host.namespace;
  await ipn(ns, ['addr', 'add', `${host.address}/${LAB_PREFIX_LENGTH}`, 'dev', HOST_INTERFACE]);
  await ipn(ns, ['link', 'set', HOST_INTERFACE, 'up']);
  await ipn(ns, ['route', 'add', 'default', 'via', GATEWAY_ADDRESS]);
}

/** Deletes a namespace (its links go with it); absent is fine. */
export async function deleteNamespace(ns: string): Promise<void> {
  if (!(await listNamespaces()).includes(ns)) return;
  await run('ip', ['netns', 'del', ns]);
}

/** PIDs of every process in a namespace; none when it does not exist. */
export async function namespacePids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns]);
    return stdout
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isSafeInteger(n) && n > 1);
  } catch {
    return [];
  }
}
