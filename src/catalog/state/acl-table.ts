/**
 * ACL tokens and policies in the catalog's state machine. Secrets never enter the state: a token
 * row holds only the SHA-256 of its secret (secrets are 122-bit random UUIDs, so a fast hash is
 * as strong as a slow one here), and the write-ahead log and snapshots hold only rows.
 *
 * Built-ins exist from index 0, as Consul creates them when ACLs start: the `global-management`
 * policy and the anonymous token (used by requests without a token).
 */
import type { NodeIdentitySpec, ServiceIdentitySpec } from '../../policy/index.js';

export const GLOBAL_MANAGEMENT_ID = '00000000-0000-0000-0000-000000000001';
export const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

export interface AclPolicyRow {
  ID: string;
  Name: string;
  Description: string;
  Rules: string;
  Datacenters: string[];
  CreateIndex: number;
  ModifyIndex: number;
}

export interface JoinGrant {
  /** The node the joining agent will be (empty: the agent names itself). */
  Node: string;
  /** Set when the join token was traded for an agent token; it is never accepted again. */
  UsedAt?: string;
  /** The agent token made from it. */
  UsedBy?: string;
}

export interface AclTokenRow {
  AccessorID: string;
  /** SHA-256 (hex) of the SecretID. */
  SecretHash: string;
  Description: string;
  /** Policy ids; names are looked up when the token is read. */
  Policies: string[];
  ServiceIdentities: ServiceIdentitySpec[];
  NodeIdentities: NodeIdentitySpec[];
  Local: boolean;
  CreateTime: string;
  ExpirationTime?: string;
  /** A join token: good only for trading, once, for an agent token (see acl-join-redeem). */
  Join?: JoinGrant;
  CreateIndex: number;
  ModifyIndex: number;
}

export type NewToken = Omit<AclTokenRow, 'CreateIndex' | 'ModifyIndex'>;
export type NewPolicy = Omit<AclPolicyRow, 'CreateIndex' | 'ModifyIndex'>;

export interface AclTableState {
  bootstrapIndex: number;
  tokens: AclTokenRow[];
  policies: AclPolicyRow[];
}

export class AclTable {
  readonly tokens = new Map<string, AclTokenRow>();
  readonly policies = new Map<string, AclPolicyRow>();
  readonly #bySecret = new Map<string, string>();
  readonly #byName = new Map<string, string>();
  /** Index of the bootstrap write; 0 while the cluster can still be bootstrapped. */
  bootstrapIndex = 0;

  constructor() {
    this.putPolicy({
      ID: GLOBAL_MANAGEMENT_ID,
      Name: 'global-management',
      Description: 'Builtin Policy that grants unlimited access',
      Rules: '',
      Datacenters: [],
      CreateIndex: 0,
      ModifyIndex: 0,
    });
    this.putToken({
      AccessorID: ANONYMOUS_ACCESSOR,
      // The anonymous token has no usable secret; "anonymous" is what Consul shows.
      SecretHash: '',
      Description: 'Anonymous Token',
      Policies: [],
      ServiceIdentities: [],
      NodeIdentities: [],
      Local: false,
      CreateTime: new Date(0).toISOString(),
      CreateIndex: 0,
      ModifyIndex: 0,
    });
  }

  tokenBySecretHash(hash: string): AclTokenRow | undefined {
    const id = hash ? this.#bySecret.get(hash) : undefined;
    return id === undefined ? undefined : this.tokens.get(id);
  }

  policyByName(name: string): AclPolicyRow | undefined {
    const id = this.#byName.get(name);
    return id === undefined ? undefined : this.policies.get(id);
  }

  putToken(row: AclTokenRow): void {
    const old = this.tokens.get(row.AccessorID);
    if (old?.SecretHash) this.#bySecret.delete(old.SecretHash);
    this.tokens.set(row.AccessorID, row);
    if (row.SecretHash) this.#bySecret.set(row.SecretHash, row.AccessorID);
  }

  deleteToken(accessor: string): boolean {
    const old = this.tokens.get(accessor);
    if (!old) return false;
    if (old.SecretHash) this.#bySecret.delete(old.SecretHash);
    this.tokens.delete(accessor);
    return true;
  }

  putPolicy(row: AclPolicyRow): void {
    const old = this.policies.get(row.ID);
    if (old) this.#byName.delete(old.Name);
    this.policies.set(row.ID, row);
    this.#byName.set(row.Name, row.ID);
  }

  deletePolicy(id: string): boolean {
    const old = this.policies.get(id);
    if (!old) return false;
    this.#byName.delete(old.Name);
    this.policies.delete(id);
    return true;
  }

  toJSON(): AclTableState {
    return {
      bootstrapIndex: this.bootstrapIndex,
      tokens: [...this.tokens.values()],
      policies: [...this.policies.values()],
    };
  }

  static from(s: AclTableState | undefined): AclTable {
    const t = new AclTable();
    if (!s) return t;
    t.bootstrapIndex = s.bootstrapIndex;
    for (const p of s.policies) t.putPolicy(p);
    for (const k of s.tokens) t.putToken(k);
    return t;
  }
}
