/**
 * policy: who each workload is (SPIFFE ids) and whether it may call another (intentions, L4 and
 * L7). Pure: no I/O, imports only core. The catalog answers intention checks with it, and the
 * proxies will enforce the same decisions.
 */
export * from './spiffe.js';
export * from './intentions.js';
export * from './acl.js';
export * from './authorizer.js';
