/**
 * /v1/session: sessions, which hold KV locks and end with their TTL or their checks.
 */
import type { Session, SessionRequest } from '../api/index.js';
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface SessionApi {
  /** Creates a session and returns its ID. */
  create(req?: SessionRequest, opts?: { signal?: AbortSignal }): Promise<string>;
  destroy(id: string, opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** One session, or null when it does not exist. */
  info(id: string, opts?: QueryOptions): Promise<QueryResult<Session | null>>;
  list(opts?: QueryOptions): Promise<QueryResult<Session[]>>;
  /** The sessions a node holds. */
  node(node: string, opts?: QueryOptions): Promise<QueryResult<Session[]>>;
  /** Restarts a session's TTL; null when the session no longer exists. */
  renew(id: string, opts?: { signal?: AbortSignal }): Promise<Session | null>;
}

export function createSessionApi(t: Transport): SessionApi {
  return {
    create: async (req = {}, opts) => {
      const res = await t.request<{ ID: string }>({
        method: 'PUT',
        path: '/v1/session/create',
        body: req,
        signal: opts?.signal,
      });
      return jsonValue(res).ID;
    },
    destroy: async (id, opts) => {
      const res = await t.request<boolean>({
        method: 'PUT',
        path: `/v1/session/destroy/${segment(id, 'session id')}`,
        signal: opts?.signal,
      });
      return jsonValue(res) === true;
    },
    info: async (id, opts) => {
      const res = await read<Session[] | null>(
        t,
        `/v1/session/info/${segment(id, 'session id')}`,
        opts,
        { notFound: null },
      );
      return { value: res.value?.[0] ?? null, index: res.index };
    },
    list: (opts) => read(t, '/v1/session/list', opts),
    node: (node, opts) => read(t, `/v1/session/node/${segment(node, 'node name')}`, opts),
    renew: async (id, opts) => {
      const res = await t.request<Session[] | null>({
        method: 'PUT',
        path: `/v1/session/renew/${segment(id, 'session id')}`,
        signal: opts?.signal,
        allowNotFound: true,
      });
      if (res.status === 404) return null;
      return jsonValue(res)?.[0] ?? null;
    },
  };
}
