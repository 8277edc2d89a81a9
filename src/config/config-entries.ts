/**
 * Consul config entries (`PUT /v1/config`, `consul config write`): the six kinds a mesh without
 * gateways needs, normalized to Consul's CamelCase wire shape and validated field by field.
 * Pure: no I/O. It lives in config because it needs both the api's filter language (resolver
 * subsets) and policy's intention rules, and only config may import both.
 *
 * Input is decoded as Consul's decoder does: keys match case-insensitively and ignoring
 * underscores (`connect_timeout` = `ConnectTimeout`), null means unset, a single value stands for
 * a one-element list, numbers and booleans may arrive as strings. Unknown keys are refused with a
 * "did you mean"; Consul fields Trellis cannot honour are refused by name rather than ignored,
 * since ignoring them would silently change what traffic does. Every error is a 400 MeshError
 * whose `field` is the path of the offending field (`Splits[1].Weight`, `Subsets["v1"].Filter`).
 *
 * validateConfigGraph / validateConfigDelete make the checks that span entries (protocols, subset
 * references) against the entries as they would be stored.
 *
 * The code is in config-entries/: one file per kind, the field reader (fields.ts), pieces the
 * kinds share (shared.ts), the entry point (normalize.ts) and the checks across entries
 * (graph.ts). This file is the public API; what it does not export stays internal.
 */
export * from './config-entries/types.js';
export { configProtocol } from './config-entries/proxy-defaults.js';
export { RETRY_ON } from './config-entries/service-router.js';
export { normalizeConfigEntry } from './config-entries/normalize.js';
export {
  serviceProtocol,
  validateConfigDelete,
  validateConfigGraph,
  type ConfigEntryView,
} from './config-entries/graph.js';
