/**
 * The certificate authority's public state: the cluster's trust domain, its CA configuration and
 * its roots (certificates only; private keys live in files on the servers, never in the state,
 * the log or a snapshot). Changes come as commands so every server agrees on the active root.
 */
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

/** Consul's CA Config fields that the built-in provider uses; durations as Go strings. */
export interface CaConfig {
  LeafCertTTL: string;
  IntermediateCertTTL: string;
  RootCertTTL: string;
  /** Rotate the root automatically when it is this old; "0s" = only when asked. */
  RotationPeriod: string;
  PrivateKeyType: 'ec';
  PrivateKeyBits: 256;
  /** Leaf signings per second allowed per agent; 0 = unlimited. */
  CSRMaxPerSecond: number;
  CSRMaxConcurrent: number;
}

export const DEFAULT_CA_CONFIG: CaConfig = {
  LeafCertTTL: '72h',
  IntermediateCertTTL: '8760h',
  RootCertTTL: '87600h',
  RotationPeriod: '0s',
  PrivateKeyType: 'ec',
  PrivateKeyBits: 256,
  CSRMaxPerSecond: 50,
  CSRMaxConcurrent: 0,
};

export interface CaRootRow {
  ID: string;
  Name: string;
  SerialNumber: number;
  SigningKeyID: string;
  ExternalTrustDomain: string;
  NotBefore: string;
  NotAfter: string;
  RootCert: string;
  /** The root cross-signed by its predecessor (sent after leaves so old bundles verify them). */
  IntermediateCerts: string[] | null;
  Active: boolean;
  PrivateKeyType: 'ec';
  PrivateKeyBits: 256;
  /** When a newer root took over (RFC 3339); the row goes once its leaves have expired. */
  RotatedOutAt?: string;
  /**
   * This root cross-signed by its successor: holders of leaves this root signed send it so that
   * peers which trust only the new root still verify them during the rotation.
   */
  SuccessorCrossCert?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export type NewCaRoot = Omit<CaRootRow, 'CreateIndex' | 'ModifyIndex' | 'Active'>;

export interface CaInitCommand {
  type: 'ca-init';
  clusterId: string;
  trustDomain: string;
  root: NewCaRoot;
  config: CaConfig;
}

export interface CaConfigCommand {
  type: 'ca-config';
  config: CaConfig;
}

export interface CaRotateCommand {
  type: 'ca-rotate';
  /** The root being replaced; refused if another rotation got there first. */
  previousId: string;
  root: NewCaRoot;
  successorCrossCert: string;
  at: string;
}

export interface CaPruneCommand {
  type: 'ca-prune';
  ids: string[];
}

export type CaCommand = CaInitCommand | CaConfigCommand | CaRotateCommand | CaPruneCommand;

export interface CaTableState {
  clusterId: string;
  trustDomain: string;
  config: CaConfig;
  configIndex: number;
  configCreateIndex: number;
  roots: CaRootRow[];
}

type Result = { ok: true; value: unknown } | { ok: false; error: string; status: number };

export class CaTable {
  clusterId = '';
  trustDomain = '';
  config: CaConfig = DEFAULT_CA_CONFIG;
  configIndex = 0;
  configCreateIndex = 0;
  roots: CaRootRow[] = [];

  get initialized(): boolean {
    return this.clusterId !== '';
  }

  active(): CaRootRow | undefined {
    return this.roots.find((r) => r.Active);
  }

  validate(cmd: CaCommand): Result | undefined {
    switch (cmd.type) {
      case 'ca-init':
        return this.initialized ? fail('the CA is already initialized', 409) : undefined;
      case 'ca-config':
        return this.initialized ? undefined : fail('the CA is not initialized yet', 503);
      case 'ca-rotate':
        if (this.active()?.ID !== cmd.previousId)
          return fail('the active root changed while rotating; try again', 409);
        if (this.roots.some((r) => r.ID === cmd.root.ID))
          return fail('that root is already known', 409);
        return undefined;
      case 'ca-prune':
        return undefined;
    }
  }

  apply(cmd: CaCommand, index: number, change: ChangeSet): Result {
    const bad = this.validate(cmd);
    if (bad) return bad;
    switch (cmd.type) {
      case 'ca-init':
        this.clusterId = cmd.clusterId;
        this.trustDomain = cmd.trustDomain;
        this.config = cmd.config;
        this.configIndex = index;
        this.configCreateIndex = index;
        this.roots = [{ ...cmd.root, Active: true, CreateIndex: index, ModifyIndex: index }];
        change.keys.add(K.caRoots).add(K.caConfig);
        return { ok: true, value: true };
      case 'ca-config':
        this.config = cmd.config;
        this.configIndex = index;
        change.keys.add(K.caConfig);
        return { ok: true, value: true };
      case 'ca-rotate': {
        this.roots = this.roots.map((r) =>
          r.Active
            ? {
                ...r,
                Active: false,
                RotatedOutAt: cmd.at,
                SuccessorCrossCert: cmd.successorCrossCert,
                ModifyIndex: index,
              }
            : r,
        );
        this.roots.push({ ...cmd.root, Active: true, CreateIndex: index, ModifyIndex: index });
        change.keys.add(K.caRoots);
        return { ok: true, value: true };
      }
      case 'ca-prune': {
        const drop = new Set(cmd.ids);
        const before = this.roots.length;
        this.roots = this.roots.filter((r) => r.Active || !drop.has(r.ID));
        if (this.roots.length !== before) change.keys.add(K.caRoots);
        return { ok: true, value: before - this.roots.length };
      }
    }
  }

  toJSON(): CaTableState {
    return {
      clusterId: this.clusterId,
      trustDomain: this.trustDomain,
      config: this.config,
      configIndex: this.configIndex,
      configCreateIndex: this.configCreateIndex,
      roots: this.roots,
    };
  }

  static from(s: CaTableState | undefined): CaTable {
    const t = new CaTable();
    if (!s) return t;
    Object.assign(t, s);
    return t;
  }
}

function fail(error: string, status: number): Result {
  return { ok: false, error, status };
}
