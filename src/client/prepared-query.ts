/**
 * /v1/query: prepared queries (stored service lookups, also answered over DNS as
 * `<name>.query.consul`).
 */
import type {
  PreparedQuery,
  PreparedQueryExecuteResponse,
  PreparedQueryExplainResponse,
} from '../api/index.js';
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface ExecuteOptions extends QueryOptions {
  /** Sort by round trip from this node (`_agent`: the agent asked). */
  near?: string;
  limit?: number;
}

export interface PreparedQueryApi {
  /** Creates a query from a definition in Consul's shape; returns its ID. */
  create(definition: object, opts?: { signal?: AbortSignal }): Promise<string>;
  list(opts?: QueryOptions): Promise<QueryResult<PreparedQuery[]>>;
  get(id: string, opts?: QueryOptions): Promise<QueryResult<PreparedQuery | null>>;
  update(id: string, definition: object, opts?: { signal?: AbortSignal }): Promise<void>;
  delete(id: string, opts?: { signal?: AbortSignal }): Promise<void>;
  execute(
    idOrName: string,
    opts?: ExecuteOptions,
  ): Promise<QueryResult<PreparedQueryExecuteResponse>>;
  explain(
    idOrName: string,
    opts?: QueryOptions,
  ): Promise<QueryResult<PreparedQueryExplainResponse>>;
}

export function createPreparedQueryApi(t: Transport): PreparedQueryApi {
  const path = (id: string) => `/v1/query/${segment(id, 'query id or name')}`;
  return {
    create: async (definition, opts) => {
      const res = await t.request<{ ID: string }>({
        method: 'POST',
        path: '/v1/query',
        body: definition,
        signal: opts?.signal,
      });
      return jsonValue(res).ID;
    },
    list: (opts) => read(t, '/v1/query', opts),
    get: async (id, opts) => {
      const r = await read<PreparedQuery[] | null>(t, path(id), opts, { notFound: null });
      return { value: r.value?.[0] ?? null, index: r.index };
    },
    update: async (id, definition, opts) => {
      await t.request({ method: 'PUT', path: path(id), body: definition, signal: opts?.signal });
    },
    delete: async (id, opts) => {
      await t.request({ method: 'DELETE', path: path(id), signal: opts?.signal });
    },
    execute: (idOrName, opts) =>
      read(t, `${path(idOrName)}/execute`, opts, {
        query: { near: opts?.near, limit: opts?.limit },
      }),
    explain: (idOrName, opts) => read(t, `${path(idOrName)}/explain`, opts),
  };
}
