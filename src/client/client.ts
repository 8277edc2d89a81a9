/**
 * createClient: one transport shared by the typed API groups.
 */
import { createAclApi, type AclApi } from './acl.js';
import { createAgentApi, type AgentApi } from './agent.js';
import { createCatalogApi, type CatalogApi } from './catalog.js';
import { createConfigEntriesApi, type ConfigEntriesApi } from './config-entries.js';
import { createConnectApi, type ConnectApi } from './connect.js';
import { createEventApi, type EventApi } from './event.js';
import { createHealthApi, type HealthApi } from './health.js';
import { createPreparedQueryApi, type PreparedQueryApi } from './prepared-query.js';
import { createKvApi, type KvApi } from './kv.js';
import { createSessionApi, type SessionApi } from './session.js';
import { createSnapshotApi, type SnapshotApi } from './snapshot.js';
import { createStatusApi, type StatusApi } from './status.js';
import {
  createTransport,
  type ApiResponse,
  type RequestOptions,
  type TransportOptions,
} from './transport.js';
import { watch, type WatchFetch, type WatchHandler, type WatchOptions } from './watch.js';

export type ClientOptions = TransportOptions;

export interface TrellisClient {
  /** Sends one request; see RequestOptions. Throws MeshError on failure. */
  request<T = unknown>(opts: RequestOptions): Promise<ApiResponse<T>>;
  catalog: CatalogApi;
  health: HealthApi;
  kv: KvApi;
  agent: AgentApi;
  status: StatusApi;
  session: SessionApi;
  acl: AclApi;
  connect: ConnectApi;
  configEntries: ConfigEntriesApi;
  event: EventApi;
  query: PreparedQueryApi;
  snapshot: SnapshotApi;
  /** The watch loop (see watch.ts), using the client's clock unless told otherwise. */
  watch<T>(fetch: WatchFetch<T>, onChange: WatchHandler<T>, opts: WatchOptions): Promise<void>;
  /** Adds a server address to fail over to; false when it is already known. */
  addAddress(address: string): boolean;
  /** Closes pooled connections after in-flight requests end. Safe to call again. */
  close(): Promise<void>;
}

export function createClient(opts: ClientOptions): TrellisClient {
  const transport = createTransport(opts);
  return {
    request: (req) => transport.request(req),
    catalog: createCatalogApi(transport),
    health: createHealthApi(transport),
    kv: createKvApi(transport),
    agent: createAgentApi(transport),
    status: createStatusApi(transport),
    session: createSessionApi(transport),
    acl: createAclApi(transport),
    connect: createConnectApi(transport),
    configEntries: createConfigEntriesApi(transport),
    event: createEventApi(transport),
    query: createPreparedQueryApi(transport),
    snapshot: createSnapshotApi(transport),
    watch: (fetch, onChange, watchOpts) =>
      watch(fetch, onChange, { clock: opts.clock, ...watchOpts }),
    addAddress: (address) => transport.addAddress(address),
    close: () => transport.close(),
  };
}
