/**
 * What the agent's control loop needs of the proxy module without loading the data plane
 * itself: plan types, listen errors and the proxy workers' handles. ServiceProxy and its HTTP
 * paths (index.ts) are loaded only by the processes that carry traffic: the proxy workers, or
 * the agent when it runs its proxies in its own process (`proxy_workers = 0`). An agent whose
 * proxies run in workers, or that has no sidecars, does not hold their code in memory.
 */
export * from './plan.js';
export * from './reasons.js';
export * from './listen.js';
export * from './workers/proxy-workers.js';
export type { ProxyLogger, ServiceProxy, ServiceProxyOptions } from './service-proxy.js';
export * from './workers/data-plane-client.js';
