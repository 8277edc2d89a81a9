/**
 * /v1/event: fire user events and list the recent ones meant for the agent's node.
 */
import type { UserEvent } from '../api/index.js';
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface FireOptions {
  /** Regular expressions limiting which nodes, services and tags the event is for. */
  node?: string;
  service?: string;
  tag?: string;
  signal?: AbortSignal;
}

export interface EventApi {
  fire(name: string, payload?: string | Buffer, opts?: FireOptions): Promise<UserEvent>;
  /** Recent events (oldest first), optionally only those named `name`. */
  list(opts?: QueryOptions & { name?: string }): Promise<QueryResult<UserEvent[]>>;
}

export function createEventApi(t: Transport): EventApi {
  return {
    fire: async (name, payload, opts) => {
      const res = await t.request<UserEvent>({
        method: 'PUT',
        path: `/v1/event/fire/${segment(name, 'event name')}`,
        query: { node: opts?.node, service: opts?.service, tag: opts?.tag },
        ...(payload !== undefined ? { body: payload } : {}),
        signal: opts?.signal,
      });
      return jsonValue(res);
    },
    list: (opts) => read(t, '/v1/event/list', opts, { query: { name: opts?.name } }),
  };
}
