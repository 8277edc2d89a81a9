/**
 * client: the typed HTTP client of the Trellis (Consul-compatible) API, over undici.
 *
 *   createClient({ addresses, token, timeoutMs, tls })
 *     -> catalog / health / kv / agent / status / session / acl / connect / configEntries / snapshot
 *        -> transport.request: token header, JSON bodies, timeout, failover, error mapping
 *
 * 1. Every read takes `{ index?, wait?, signal? }` and returns `{ value, index }`, where
 *    `index` is X-Consul-Index; pass it back as `index` to block until something changes.
 *    A blocking call's timeout is wait + wait/16 + 5s.
 * 2. Addresses are tried in order; a connection failure (refused, reset, timeout) moves on
 *    to the next, and the one that answered is tried first next time. When all fail the
 *    error is MESH_ERR_UNAVAILABLE naming each address.
 * 3. HTTP error statuses throw HttpStatusError (a MeshError): 400/403/404/409/413 and other
 *    4xx are kind 'user' with that status, 5xx are kind 'peer'; the message is the server's.
 * 4. watch() runs Consul's watch loop over any read (change detection, index reset,
 *    exponential backoff 100ms..30s, stop on abort).
 *
 * Imports only src/core, src/api, node builtins and undici.
 */
export { createClient, type ClientOptions, type TrellisClient } from './client.js';
export { Agent as UndiciAgent } from './undici-core.js';
export {
  DEFAULT_TIMEOUT_MS,
  encodeQuery,
  parseIndex,
  currentTlsConnector,
  type ApiResponse,
  type HttpMethod,
  type QueryValue,
  type RequestOptions,
  type TlsOptions,
} from './transport.js';
export {
  DEFAULT_WAIT_MS,
  blockingTimeoutMs,
  type QueryOptions,
  type QueryResult,
} from './query.js';
export { HttpStatusError, isPlainHttpAnswer, mayRetryElsewhere } from './errors.js';
export { parseAddress, type Endpoint } from './address.js';
export {
  MAX_BACKOFF_MS,
  MIN_BACKOFF_MS,
  backoffDelay,
  watch,
  type WatchFetch,
  type WatchHandler,
  type WatchOptions,
} from './watch.js';
export type { CatalogApi, CatalogServiceOptions } from './catalog.js';
export type { HealthApi, HealthServiceOptions } from './health.js';
export {
  decodeValue,
  type KvApi,
  type KvDeleteOptions,
  type KvGetOptions,
  type KvPutOptions,
} from './kv.js';
export type { AgentApi, RedirectView, RegisterServiceOptions, WriteOptions } from './agent.js';
export type { StatusApi } from './status.js';
export type { SessionApi } from './session.js';
export type { SavedSnapshot, SnapshotApi } from './snapshot.js';
export type { AclApi, AclWriteOptions, TokenListOptions } from './acl.js';
export type {
  ConnectApi,
  ConnectWriteOptions,
  IntentionCheckRequest,
  IntentionMatchBy,
} from './connect.js';
export type { ConfigEntriesApi, ConfigEntryWriteOptions } from './config-entries.js';
export type { EventApi, FireOptions } from './event.js';
export type { ExecuteOptions, PreparedQueryApi } from './prepared-query.js';
export type { AgentSelf, CatalogNode, HealthState, TtlStatus } from './types.js';
