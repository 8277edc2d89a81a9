/** proxy: the data plane. Its only input is a ProxyPlan; it knows nothing of catalog or agent. */
export * from './plan.js';
export * from './reasons.js';
export * from './service-proxy.js';
export * from './listen.js';
export * from './workers/proxy-workers.js';
