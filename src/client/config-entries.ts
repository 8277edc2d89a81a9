/**
 * /v1/config: config entries (service-defaults, proxy-defaults, service-intentions, ...).
 */
import type { ConfigEntry } from '../api/index.js';
import { badRequest } from '../core/index.js';
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { ApiResponse, Transport } from './transport.js';

export interface ConfigEntryWriteOptions {
  /** Write only if the entry's ModifyIndex equals this; 0 = only if it does not exist. */
  cas?: number;
  signal?: AbortSignal;
}

export interface ConfigEntriesApi {
  /** Creates or replaces an entry; false when the cas condition did not hold. */
  set(entry: ConfigEntry, opts?: ConfigEntryWriteOptions): Promise<boolean>;
  /** One entry, or null when it does not exist. */
  get(kind: string, name: string, opts?: QueryOptions): Promise<QueryResult<ConfigEntry | null>>;
  /** Every entry of a kind. */
  list(kind: string, opts?: QueryOptions): Promise<QueryResult<ConfigEntry[]>>;
  /** False when the cas condition did not hold. */
  delete(kind: string, name: string, opts?: ConfigEntryWriteOptions): Promise<boolean>;
}

export function createConfigEntriesApi(t: Transport): ConfigEntriesApi {
  // Every method is async, so a bad argument (an empty name) rejects instead of throwing.
  return {
    set: async (entry, opts = {}) => {
      if (typeof entry.Kind !== 'string' || entry.Kind === '') {
        throw badRequest('The config entry has no Kind', 'Kind');
      }
      const res = await t.request<boolean>({
        method: 'PUT',
        path: '/v1/config',
        query: { cas: opts.cas },
        body: entry,
        signal: opts.signal,
      });
      return writeAccepted(res);
    },
    get: async (kind, name, opts) =>
      read<ConfigEntry | null>(t, entryPath(kind, name), opts, { notFound: null }),
    list: async (kind, opts) => {
      const res = await read<ConfigEntry[] | null>(t, `/v1/config/${segment(kind, 'kind')}`, opts);
      return { value: res.value ?? [], index: res.index };
    },
    delete: async (kind, name, opts = {}) => {
      const res = await t.request({
        method: 'DELETE',
        path: entryPath(kind, name),
        query: { cas: opts.cas },
        signal: opts.signal,
      });
      return writeAccepted(res);
    },
  };
}

function entryPath(kind: string, name: string): string {
  return `/v1/config/${segment(kind, 'kind')}/${segment(name, 'name')}`;
}

/**
 * The outcome of a write that answers `true`/`false`: JSON false is a refusal (a failed cas);
 * any other success (true, `{}`, an empty body) means it was applied.
 */
export function writeAccepted(res: ApiResponse): boolean {
  if (res.json) return res.body !== false;
  if (typeof res.body === 'string' && res.body.trim() === '') return true;
  return jsonValue(res) !== false;
}
