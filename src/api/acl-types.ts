/**
 * Wire shapes of the ACL endpoints (`/v1/acl/*`, Consul's `api/acl.go`) and of Trellis's
 * join-token extension. Field names are Consul's; `?` marks what Consul omits when empty.
 */

/** A reference to a policy or role: by ID, by Name, or both (the server fills in the other). */
export interface ACLLink {
  ID?: string;
  Name?: string;
}

/** Grants a service (and its sidecar proxy) write, and read on every service and node. */
export interface ACLServiceIdentity {
  ServiceName: string;
  /** Datacenters the identity is valid in; all of them when absent. */
  Datacenters?: string[];
}

/** Grants a node write on itself and read on every service. */
export interface ACLNodeIdentity {
  NodeName: string;
  Datacenter: string;
}

/** A token as read back (GET /v1/acl/token/:accessor, bootstrap, create, update). */
export interface ACLToken {
  AccessorID: string;
  SecretID: string;
  Description: string;
  Policies?: ACLLink[];
  Roles?: ACLLink[];
  ServiceIdentities?: ACLServiceIdentity[];
  NodeIdentities?: ACLNodeIdentity[];
  /** True for tokens that exist in one datacenter only. */
  Local: boolean;
  AuthMethod?: string;
  /** RFC 3339; absent for tokens that never expire. */
  ExpirationTime?: string;
  /** Go duration the token was created to live for. */
  ExpirationTTL?: string;
  /** RFC 3339. */
  CreateTime: string;
  Hash?: string;
  CreateIndex: number;
  ModifyIndex: number;
  Namespace?: string;
  Partition?: string;
}

/** One row of GET /v1/acl/tokens. */
export interface ACLTokenListEntry {
  AccessorID: string;
  /** Redacted by servers unless the caller may read secrets. */
  SecretID?: string;
  Description: string;
  Policies?: ACLLink[];
  Roles?: ACLLink[];
  ServiceIdentities?: ACLServiceIdentity[];
  NodeIdentities?: ACLNodeIdentity[];
  Local: boolean;
  AuthMethod?: string;
  ExpirationTime?: string;
  CreateTime: string;
  Hash?: string;
  Legacy?: boolean;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Body of PUT /v1/acl/token (create) and PUT /v1/acl/token/:accessor (update). */
export interface ACLTokenRequest {
  /** Chosen by the server when absent. */
  AccessorID?: string;
  SecretID?: string;
  Description?: string;
  Policies?: ACLLink[];
  Roles?: ACLLink[];
  ServiceIdentities?: ACLServiceIdentity[];
  NodeIdentities?: ACLNodeIdentity[];
  Local?: boolean;
  /** RFC 3339; mutually exclusive with ExpirationTTL. */
  ExpirationTime?: string;
  /** Go duration ("24h"). */
  ExpirationTTL?: string;
}

/** A policy as read back (GET /v1/acl/policy/:id, create, update). */
export interface ACLPolicy {
  ID: string;
  Name: string;
  Description: string;
  /** The rules text (HCL or JSON), as written. */
  Rules: string;
  Datacenters?: string[] | null;
  Hash?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** One row of GET /v1/acl/policies: a policy without its rules. */
export interface ACLPolicyListEntry {
  ID: string;
  Name: string;
  Description: string;
  Datacenters?: string[] | null;
  Hash?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Body of PUT /v1/acl/policy (create) and PUT /v1/acl/policy/:id (update). */
export interface ACLPolicyRequest {
  /** Required by the server when updating too. */
  ID?: string;
  Name: string;
  Description?: string;
  Rules: string;
  Datacenters?: string[];
}

/** Body of PUT /v1/internal/trellis/join-token (a Trellis extension). */
export interface JoinTokenRequest {
  /** Go duration the token stays valid for; the server's default when absent. */
  TTL?: string;
  /** Restricts the token to joining as this node name. */
  Node?: string;
  Description?: string;
}

/** A one-use token a new host presents to join, with what it needs to trust the servers. */
export interface JoinToken {
  AccessorID: string;
  SecretID: string;
  /** RFC 3339. */
  ExpirationTime: string;
  /** Fingerprint of the active CA root the new host pins (colon-hex SHA-256 or SHA-1). */
  CAFingerprint: string;
  /** The server's HTTPS address (advertised host:port) that a new host joins through. */
  JoinAddress?: string;
}
