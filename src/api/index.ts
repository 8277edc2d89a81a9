/**
 * api: the wire contract shared by catalog, agent, client and CLI. Pure: no I/O.
 */
export * from './types.js';
export * from './normalize.js';
export * from './text-rules.js';
export * from './filter.js';
export * from './acl-types.js';
export * from './connect-types.js';
export * from './cluster-types.js';
export * from './prepared-query.js';
export * from './snapshot-file.js';
