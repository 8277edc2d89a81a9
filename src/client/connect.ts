/**
 * /v1/connect: the CA (roots, configuration, leaf certificates) and intentions, with the
 * Trellis extensions to the intention check (an HTTP request to decide, and what decided).
 */
import type {
  CAConfig,
  CAConfigRequest,
  CARoots,
  Intention,
  IntentionCheckResult,
  IntentionUpsert,
  IssuedCert,
} from '../api/index.js';
import { badRequest } from '../core/index.js';
import { writeAccepted } from './config-entries.js';
import { read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { Transport } from './transport.js';

export interface ConnectWriteOptions {
  signal?: AbortSignal;
}

/** The HTTP request an intention check decides (Trellis extension); absent = a connection. */
export interface IntentionCheckRequest {
  path?: string;
  method?: string;
  /** Header name -> value; sent as repeated `header=Name:Value`. */
  headers?: Record<string, string>;
}

export type IntentionMatchBy = 'source' | 'destination';

export interface ConnectApi {
  /** The CA roots; a blocking read that returns when the roots change (rotation). */
  caRoots(opts?: QueryOptions): Promise<QueryResult<CARoots>>;
  caGetConfig(opts?: QueryOptions): Promise<QueryResult<CAConfig>>;
  caSetConfig(body: CAConfigRequest, opts?: ConnectWriteOptions): Promise<void>;
  /** The local agent's certificate for a service; blocks until it is renewed. */
  leafCert(service: string, opts?: QueryOptions): Promise<QueryResult<IssuedCert>>;
  intentionList(opts?: QueryOptions): Promise<QueryResult<Intention[]>>;
  /** The intention for exactly this pair, or null when there is none. */
  intentionGetExact(
    source: string,
    destination: string,
    opts?: QueryOptions,
  ): Promise<QueryResult<Intention | null>>;
  /** Creates or replaces the intention for a pair. */
  intentionUpsert(
    source: string,
    destination: string,
    body: IntentionUpsert,
    opts?: ConnectWriteOptions,
  ): Promise<boolean>;
  intentionDeleteExact(
    source: string,
    destination: string,
    opts?: ConnectWriteOptions,
  ): Promise<void>;
  /** Would `source` be allowed to reach `destination` (with this HTTP request)? */
  intentionCheck(
    source: string,
    destination: string,
    req?: IntentionCheckRequest,
    opts?: QueryOptions,
  ): Promise<QueryResult<IntentionCheckResult>>;
  /** The intentions naming each name as source or destination, in evaluation order. */
  intentionMatch(
    by: IntentionMatchBy,
    name: string | readonly string[],
    opts?: QueryOptions,
  ): Promise<QueryResult<Record<string, Intention[]>>>;
}

export function createConnectApi(t: Transport): ConnectApi {
  // Every method is async, so a bad argument (an empty name) rejects instead of throwing.
  return {
    caRoots: async (opts) => read(t, '/v1/connect/ca/roots', opts),
    caGetConfig: async (opts) => read(t, '/v1/connect/ca/configuration', opts),
    caSetConfig: async (body, opts) => {
      await t.request({
        method: 'PUT',
        path: '/v1/connect/ca/configuration',
        body,
        signal: opts?.signal,
      });
    },
    leafCert: async (service, opts) =>
      read(t, `/v1/agent/connect/ca/leaf/${segment(service, 'service name')}`, opts),
    intentionList: async (opts) => {
      const res = await read<Intention[] | null>(t, '/v1/connect/intentions', opts);
      return { value: res.value ?? [], index: res.index };
    },
    intentionGetExact: async (source, destination, opts) =>
      read<Intention | null>(t, '/v1/connect/intentions/exact', opts, {
        query: pair(source, destination),
        notFound: null,
      }),
    intentionUpsert: async (source, destination, body, opts) => {
      const res = await t.request<boolean>({
        method: 'PUT',
        path: '/v1/connect/intentions/exact',
        query: pair(source, destination),
        body,
        signal: opts?.signal,
      });
      return writeAccepted(res);
    },
    intentionDeleteExact: async (source, destination, opts) => {
      await t.request({
        method: 'DELETE',
        path: '/v1/connect/intentions/exact',
        query: pair(source, destination),
        signal: opts?.signal,
      });
    },
    intentionCheck: async (source, destination, req = {}, opts) =>
      read(t, '/v1/connect/intentions/check', opts, {
        query: {
          ...pair(source, destination),
          path: req.path,
          method: req.method,
          header: headerQuery(req.headers),
        },
      }),
    intentionMatch: async (by, name, opts) => {
      const names = typeof name === 'string' ? [name] : [...name];
      if (names.length === 0 || names.some((n) => n === '')) {
        throw badRequest('Missing name to match intentions against', 'name');
      }
      const res = await read<Record<string, Intention[]> | null>(
        t,
        '/v1/connect/intentions/match',
        opts,
        { query: { by, name: names } },
      );
      return { value: res.value ?? {}, index: res.index };
    },
  };
}

function pair(source: string, destination: string): { source: string; destination: string } {
  if (source === '') throw badRequest('Missing intention source', 'source');
  if (destination === '') throw badRequest('Missing intention destination', 'destination');
  return { source, destination };
}

/** `Name:Value` once per header; a name with a colon could not be told from its value. */
function headerQuery(headers: Record<string, string> | undefined): string[] | undefined {
  if (!headers) return undefined;
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name === '' || name.includes(':')) {
      throw badRequest(`Invalid header name "${name}"`, 'headers');
    }
    out.push(`${name}:${value}`);
  }
  return out.length > 0 ? out : undefined;
}
