/**
 * The data plane (ServiceProxy), loaded into the agent's process only when the agent runs its
 * proxies there (`proxy_workers = 0`): with workers, the agent's process never carries traffic
 * and does not load that code (about 5 MiB of an idle agent's memory).
 */
import type { ServiceProxy } from '../../proxy/control.js';

let loaded: typeof ServiceProxy | undefined;

/** Loads ServiceProxy; the agent calls this at start when it runs proxies in its process. */
export async function loadDataPlane(): Promise<void> {
  loaded ??= (await import('../../proxy/service-proxy.js')).ServiceProxy;
}

/** ServiceProxy, once loadDataPlane() has run. */
export function dataPlane(): typeof ServiceProxy {
  if (!loaded) throw new Error('the data plane is not loaded in this process (loadDataPlane)');
  return loaded;
}
