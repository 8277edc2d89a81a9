/**
 * /v1/status: which server leads, and who the voters are.
 */
import { read, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface StatusApi {
  /** "host:port" of the leader, or "" when there is none. */
  leader(opts?: QueryOptions): Promise<QueryResult<string>>;
  peers(opts?: QueryOptions): Promise<QueryResult<string[]>>;
}

export function createStatusApi(t: Transport): StatusApi {
  return {
    leader: (opts) => read(t, '/v1/status/leader', opts),
    peers: (opts) => read(t, '/v1/status/peers', opts),
  };
}
