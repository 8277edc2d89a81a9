/**
 * /v1/kv: the key/value store. Values travel raw on writes and base64 in KVPair on reads.
 */
import type { KVPair } from '../api/index.js';
import { badRequest } from '../core/index.js';
import { jsonValue, read, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface KvGetOptions extends QueryOptions {
  /** Every pair under the key as a prefix. */
  recurse?: boolean;
}

export interface KvPutOptions {
  /** Write only if the key's ModifyIndex equals this; 0 = only if the key is absent. */
  cas?: number;
  /** Opaque 64-bit number stored with the value. */
  flags?: number;
  /** Take the key's lock for this session. */
  acquire?: string;
  /** Give up the key's lock held by this session. */
  release?: string;
  signal?: AbortSignal;
}

export interface KvDeleteOptions {
  /** Delete every key under the key as a prefix. */
  recurse?: boolean;
  /** Delete only if the key's ModifyIndex equals this. */
  cas?: number;
  signal?: AbortSignal;
}

export interface KvApi {
  /** One pair, or null when the key does not exist. */
  get(key: string, opts?: KvGetOptions & { recurse?: false }): Promise<QueryResult<KVPair | null>>;
  /** All pairs under a prefix, or null when there are none. */
  get(key: string, opts: KvGetOptions & { recurse: true }): Promise<QueryResult<KVPair[] | null>>;
  get(key: string, opts?: KvGetOptions): Promise<QueryResult<KVPair | KVPair[] | null>>;
  /** Key names under a prefix, collapsed at the first `separator` after it when one is given. */
  keys(prefix: string, separator?: string, opts?: QueryOptions): Promise<QueryResult<string[]>>;
  /** False when a cas, acquire or release condition did not hold. */
  put(key: string, value: string | Buffer, opts?: KvPutOptions): Promise<boolean>;
  /** False when the cas condition did not hold. */
  delete(key: string, opts?: KvDeleteOptions): Promise<boolean>;
}

export function createKvApi(t: Transport): KvApi {
  async function get(
    key: string,
    opts: KvGetOptions = {},
  ): Promise<QueryResult<KVPair | KVPair[] | null>> {
    if (!opts.recurse && key === '') throw badRequest('Missing key name', 'key');
    const res = await read<KVPair[] | null>(t, kvPath(key), opts, {
      query: { recurse: opts.recurse },
      notFound: null,
    });
    if (opts.recurse || res.value === null) return res;
    return { value: res.value[0] ?? null, index: res.index };
  }

  return {
    get: get as KvApi['get'],
    keys: async (prefix, separator, opts) =>
      read<string[]>(t, kvPath(prefix), opts, {
        query: { keys: true, separator },
        notFound: [],
      }),
    put: async (key, value, opts = {}) => {
      if (key === '') throw badRequest('Missing key name', 'key');
      const res = await t.request<boolean>({
        method: 'PUT',
        path: kvPath(key),
        query: { cas: opts.cas, flags: opts.flags, acquire: opts.acquire, release: opts.release },
        body: value,
        signal: opts.signal,
      });
      return jsonValue(res) === true;
    },
    delete: async (key, opts = {}) => {
      if (!opts.recurse && key === '') throw badRequest('Missing key name', 'key');
      const res = await t.request<boolean>({
        method: 'DELETE',
        path: kvPath(key),
        query: { recurse: opts.recurse, cas: opts.cas },
        signal: opts.signal,
      });
      return jsonValue(res) === true;
    },
  };
}

/** Keys keep their slashes; each segment between them is percent-encoded. */
function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** The bytes of a pair's value (empty for a null value). */
export function decodeValue(pair: Pick<KVPair, 'Value'>): Buffer {
  return pair.Value === null ? Buffer.alloc(0) : Buffer.from(pair.Value, 'base64');
}
