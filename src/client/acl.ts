/**
 * /v1/acl: bootstrap, tokens and policies; plus Trellis's join tokens
 * (PUT /v1/internal/trellis/join-token), which let a new host join with one secret.
 */
import type {
  ACLPolicy,
  ACLPolicyListEntry,
  ACLPolicyRequest,
  ACLToken,
  ACLTokenListEntry,
  ACLTokenRequest,
  JoinToken,
  JoinTokenRequest,
} from '../api/index.js';
import { writeAccepted } from './config-entries.js';
import { jsonValue, read, segment, type QueryOptions, type QueryResult } from './query.js';
import type { HttpMethod, Transport } from './transport.js';

export interface AclWriteOptions {
  signal?: AbortSignal;
}

export interface TokenListOptions extends QueryOptions {
  /** Only tokens linked to this policy ID. */
  policy?: string;
}

export interface AclApi {
  /** Makes the first management token; the server answers 403 once ACLs are bootstrapped. */
  bootstrap(opts?: AclWriteOptions): Promise<ACLToken>;
  tokenCreate(body: ACLTokenRequest, opts?: AclWriteOptions): Promise<ACLToken>;
  /** One token by accessor ID, or null when it does not exist. */
  tokenRead(accessor: string, opts?: QueryOptions): Promise<QueryResult<ACLToken | null>>;
  /** The token the request is made with. */
  tokenSelf(opts?: QueryOptions): Promise<QueryResult<ACLToken>>;
  tokenUpdate(accessor: string, body: ACLTokenRequest, opts?: AclWriteOptions): Promise<ACLToken>;
  tokenDelete(accessor: string, opts?: AclWriteOptions): Promise<boolean>;
  tokenList(opts?: TokenListOptions): Promise<QueryResult<ACLTokenListEntry[]>>;
  policyCreate(body: ACLPolicyRequest, opts?: AclWriteOptions): Promise<ACLPolicy>;
  /** One policy by ID, or null when it does not exist. */
  policyRead(id: string, opts?: QueryOptions): Promise<QueryResult<ACLPolicy | null>>;
  /** One policy by name, or null when it does not exist. */
  policyReadByName(name: string, opts?: QueryOptions): Promise<QueryResult<ACLPolicy | null>>;
  policyUpdate(id: string, body: ACLPolicyRequest, opts?: AclWriteOptions): Promise<ACLPolicy>;
  policyDelete(id: string, opts?: AclWriteOptions): Promise<boolean>;
  /** Every policy, without rules. */
  policyList(opts?: QueryOptions): Promise<QueryResult<ACLPolicyListEntry[]>>;
  /** A one-use token for a new host to join with (a Trellis extension). */
  joinTokenCreate(req?: JoinTokenRequest, opts?: AclWriteOptions): Promise<JoinToken>;
}

export function createAclApi(t: Transport): AclApi {
  const send = async <T>(
    method: HttpMethod,
    path: string,
    opts: AclWriteOptions | undefined,
    body?: unknown,
  ): Promise<T> => jsonValue(await t.request<T>({ method, path, body, signal: opts?.signal }));
  const remove = async (path: string, opts: AclWriteOptions | undefined): Promise<boolean> =>
    writeAccepted(await t.request({ method: 'DELETE', path, signal: opts?.signal }));
  const tokenPath = (accessor: string) => `/v1/acl/token/${segment(accessor, 'accessor id')}`;
  const policyPath = (id: string) => `/v1/acl/policy/${segment(id, 'policy id')}`;

  // Every method is async, so a bad argument (an empty name) rejects instead of throwing.
  return {
    bootstrap: async (opts) => send('PUT', '/v1/acl/bootstrap', opts),
    tokenCreate: async (body, opts) => send('PUT', '/v1/acl/token', opts, body),
    tokenRead: async (accessor, opts) => read(t, tokenPath(accessor), opts, { notFound: null }),
    tokenSelf: async (opts) => read(t, '/v1/acl/token/self', opts),
    tokenUpdate: async (accessor, body, opts) =>
      send('PUT', tokenPath(accessor), opts, { ...body, AccessorID: accessor }),
    tokenDelete: async (accessor, opts) => remove(tokenPath(accessor), opts),
    tokenList: async (opts) => {
      const res = await read<ACLTokenListEntry[] | null>(t, '/v1/acl/tokens', opts, {
        query: { policy: opts?.policy },
      });
      return { value: res.value ?? [], index: res.index };
    },
    policyCreate: async (body, opts) => send('PUT', '/v1/acl/policy', opts, body),
    policyRead: async (id, opts) => read(t, policyPath(id), opts, { notFound: null }),
    policyReadByName: async (name, opts) =>
      read(t, `/v1/acl/policy/name/${segment(name, 'policy name')}`, opts, { notFound: null }),
    policyUpdate: async (id, body, opts) => send('PUT', policyPath(id), opts, { ...body, ID: id }),
    policyDelete: async (id, opts) => remove(policyPath(id), opts),
    policyList: async (opts) => {
      const res = await read<ACLPolicyListEntry[] | null>(t, '/v1/acl/policies', opts);
      return { value: res.value ?? [], index: res.index };
    },
    joinTokenCreate: async (req = {}, opts) =>
      send('PUT', '/v1/internal/trellis/join-token', opts, req),
  };
}
