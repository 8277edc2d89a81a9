/**
 * Wire shapes of the Connect endpoints: the CA (`/v1/connect/ca/*`, leaf certificates),
 * intentions (`/v1/connect/intentions*`) and config entries (`/v1/config*`), as Consul's
 * `api/connect_ca.go`, `api/connect_intention.go` and `api/config_entry.go` spell them.
 */

/** One CA root certificate. */
export interface CARoot {
  /** SHA-1 fingerprint of the root, lower-case colon-hex. */
  ID: string;
  Name: string;
  SerialNumber: number;
  SigningKeyID: string;
  ExternalTrustDomain?: string;
  /** RFC 3339. */
  NotBefore: string;
  NotAfter: string;
  /** PEM. */
  RootCert: string;
  /** PEM; cross-signed certificates and intermediates, the leaf signer last. */
  IntermediateCerts: string[] | null;
  Active: boolean;
  PrivateKeyType: string;
  PrivateKeyBits: number;
  /**
   * Trellis: this (older) root cross-signed by the root that replaced it. A holder of a leaf
   * this root signed sends it after the leaf, so peers that trust only the new root verify it.
   */
  TrellisSuccessorCrossCert?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** GET /v1/connect/ca/roots. */
export interface CARoots {
  ActiveRootID: string;
  /** "<cluster id>.consul". */
  TrustDomain: string;
  Roots: CARoot[];
}

/** GET /v1/connect/ca/configuration. */
export interface CAConfig {
  Provider: string;
  /** Provider settings (LeafCertTTL, PrivateKeyType, ...); secrets are redacted. */
  Config: Record<string, unknown>;
  State?: Record<string, string> | null;
  ForceWithoutCrossSigning?: boolean;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Body of PUT /v1/connect/ca/configuration. */
export interface CAConfigRequest {
  Provider: string;
  Config: Record<string, unknown>;
  ForceWithoutCrossSigning?: boolean;
}

/** GET /v1/agent/connect/ca/leaf/:service: a service's certificate and private key. */
export interface IssuedCert {
  /** Colon-hex. */
  SerialNumber: string;
  /** PEM: the leaf, then any intermediates. */
  CertPEM: string;
  PrivateKeyPEM: string;
  Service: string;
  /** The SPIFFE id in the certificate's URI SAN. */
  ServiceURI: string;
  /** RFC 3339. */
  ValidAfter: string;
  ValidBefore: string;
  CreateIndex: number;
  ModifyIndex: number;
  Namespace?: string;
  Partition?: string;
}

export type IntentionAction = 'allow' | 'deny';

/** One header condition of an L7 permission; at most one of the matchers is set. */
export interface IntentionHTTPHeaderPermission {
  Name: string;
  Present?: boolean;
  Exact?: string;
  Prefix?: string;
  Suffix?: string;
  Contains?: string;
  Regex?: string;
  Invert?: boolean;
  IgnoreCase?: boolean;
}

/** The HTTP conditions of an L7 permission; at most one of the path matchers is set. */
export interface IntentionHTTPPermission {
  PathExact?: string;
  PathPrefix?: string;
  PathRegex?: string;
  Header?: IntentionHTTPHeaderPermission[];
  Methods?: string[];
}

/** An L7 rule: permissions are tried top to bottom and the first that matches decides. */
export interface IntentionPermission {
  Action: IntentionAction;
  HTTP?: IntentionHTTPPermission;
  /** JWT claims to verify (opaque here). */
  JWT?: Record<string, unknown>;
}

/** An intention as the endpoints return it. */
export interface Intention {
  /** Legacy UUID; empty for intentions made through config entries or the exact endpoints. */
  ID?: string;
  Description?: string;
  SourceNS?: string;
  SourceName: string;
  DestinationNS?: string;
  DestinationName: string;
  SourcePartition?: string;
  DestinationPartition?: string;
  SourcePeer?: string;
  /** "consul". */
  SourceType?: string;
  /** Set for L4 intentions; mutually exclusive with Permissions. */
  Action?: IntentionAction;
  Permissions?: IntentionPermission[];
  Meta?: Record<string, string>;
  /** 9 exact=>exact, 8 *=>exact, 6 exact=>*, 5 *=>*; higher is evaluated first. */
  Precedence: number;
  CreatedAt?: string;
  UpdatedAt?: string;
  Hash?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Body of PUT /v1/connect/intentions/exact: an upsert of one source/destination pair. */
export interface IntentionUpsert {
  SourceType?: string;
  Action?: IntentionAction;
  Permissions?: IntentionPermission[];
  Description?: string;
}

/**
 * GET /v1/connect/intentions/check. Consul answers `{Allowed}` only; Trellis adds what
 * decided, so the fields after Allowed are absent when talking to a Consul server.
 */
export interface IntentionCheckResult {
  Allowed: boolean;
  /** One sentence naming what decided. */
  Reason?: string;
  /** The deciding intention; null when the default policy decided with none matching. */
  Intention?: Intention | null;
  /** 1-based index of the deciding permission in Intention.Permissions; null for none. */
  Permission?: number | null;
  /** True when the default policy decided. */
  Default?: boolean;
}

/** Any config entry: its Kind and Name, and the kind's own fields. */
export interface ConfigEntry {
  Kind: string;
  Name: string;
  [key: string]: unknown;
}
