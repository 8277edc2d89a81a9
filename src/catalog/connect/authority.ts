/**
 * The built-in certificate authority of a server: it creates the cluster's root on first start,
 * signs leaves for services, agents and servers with the active root, rotates roots (the new
 * root cross-signed by the old one, and the old by the new, so handshakes keep working in both
 * directions while bundles update) and drops old roots once every leaf they signed has expired.
 *
 * The identity in every certificate comes from the caller of these methods (the catalog's
 * record), never from the CSR: signLeaf refuses a CSR that asks for anything else.
 */
import type { KeyObject } from 'node:crypto';
import { MeshError, parseDuration, type Clock } from '../../core/index.js';
import { agentSpiffeId, serviceSpiffeId } from '../../policy/index.js';
import {
  caFingerprint,
  crossSign,
  describeRoot,
  generateRoot,
  keyMatchesCert,
  loadPrivateKey,
  reverseCrossSign,
  signLeaf,
  type SignedLeaf,
} from '../../pki/index.js';
import {
  DEFAULT_CA_CONFIG,
  type CaCommand,
  type CaConfig,
  type CaRootRow,
  type NewCaRoot,
} from '../state/ca-table.js';
import type { StateStore } from '../state/state-store.js';
import type { CaKeyStore } from './key-store.js';
import { NO_AUDIT, type AuditActor, type AuditLog } from '../../httpkit/audit.js';

/** The actor of operations the server starts itself (scheduled rotation, its own certificate). */
export const INTERNAL_ACTOR: AuditActor = { accessor: 'internal', remote: '' };

const DAY_MS = 24 * 3600_000;
/** How far agents' and servers' clocks may disagree: a rotated-out root stays this much longer. */
export const CLOCK_SKEW_MS = 60_000;
/** The longest wait between two maintenance checks, so configuration changes are seen. */
export const MAX_CHECK_MS = 30_000;
/** The wait after a failed check, and the least wait between checks. */
const RETRY_MS = 10_000;
const MIN_CHECK_MS = 1_000;

export interface IssuedCert {
  SerialNumber: string;
  /** The leaf, then the certificates a peer may need to chain it to the roots it holds. */
  CertPEM: string;
  Service?: string;
  ServiceURI?: string;
  Agent?: string;
  AgentURI?: string;
  ValidAfter: string;
  ValidBefore: string;
  /** The root that signed it. */
  RootID: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface AuthorityOptions {
  state: StateStore;
  propose(cmd: CaCommand): Promise<unknown>;
  keys: CaKeyStore;
  clock: Clock;
  datacenter: string;
  newId(): string;
  log: {
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
  };
  /** Every signing, rotation and configuration change writes one line here. */
  audit?: AuditLog;
  /**
   * The state is shared with other servers (the etcd store): another server may create the CA
   * first (its key reaches etcd before its root reaches the state), so a key missing at start
   * is logged and signing refused, instead of failing the start.
   */
  sharedState?: boolean;
  /** How far clocks may disagree (ms): a rotated-out root is kept this long past its leaves. */
  clockSkewMs?: number;
}

export function caError(message: string, status = 500): MeshError {
  return new MeshError('MESH_ERR_CA', status >= 500 ? 'system' : 'user', message, { status });
}

export function durationMs(text: string): number {
  return parseDuration(text) ?? 0;
}

export class CertificateAuthority {
  readonly #o: AuthorityOptions;
  #signer: { rootId: string; key: KeyObject; certPem: string } | undefined;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #running = false;
  #generation = 0;
  #rotating: Promise<CaRootRow> | undefined;
  readonly #audit: AuditLog;

  get #skewMs(): number {
    return this.#o.clockSkewMs ?? CLOCK_SKEW_MS;
  }

  constructor(opts: AuthorityOptions) {
    this.#o = opts;
    this.#audit = opts.audit ?? NO_AUDIT;
  }

  /** Runs one CA operation and writes its audit line, whether it succeeds or throws. */
  async #audited<T>(
    event: 'ca.sign' | 'ca.rotate' | 'ca.prune' | 'ca.config',
    actor: AuditActor,
    fields: object,
    op: () => Promise<T>,
    result: (v: T) => object = () => ({}),
  ): Promise<T> {
    let v: T;
    try {
      v = await op();
    } catch (err) {
      this.#audit.ca(event, actor, fields, err instanceof Error ? err.message : String(err));
      throw err;
    }
    this.#audit.ca(event, actor, { ...fields, ...result(v) });
    return v;
  }

  get trustDomain(): string {
    return this.#o.state.ca.trustDomain;
  }

  /** Creates the cluster's CA on first start; afterwards checks this server holds the key. */
  async init(): Promise<void> {
    const ca = this.#o.state.ca;
    if (!ca.initialized) {
      const clusterId = this.#o.newId();
      const trustDomain = `${clusterId}.consul`;
      const g = generateRoot({
        clusterId,
        trustDomain,
        ttlMs: durationMs(DEFAULT_CA_CONFIG.RootCertTTL),
        now: new Date(this.#o.clock.now()),
      });
      await this.#o.keys.write(g.root.ID, g.keyPem);
      try {
        await this.#o.propose({
          type: 'ca-init',
          clusterId,
          trustDomain,
          root: { ...g.root, ExternalTrustDomain: '' },
          config: DEFAULT_CA_CONFIG,
        });
        this.#o.log.info({ trustDomain, root: g.root.ID }, 'certificate authority created');
      } catch (err) {
        // Another server of a shared store created it first: use that one.
        if (!this.#o.sharedState || !ca.initialized) throw err;
      }
    }
    try {
      await this.#loadSigner();
    } catch (err) {
      if (!this.#o.sharedState) throw err;
      this.#o.log.error(
        { err: err instanceof Error ? err.message : String(err) },
        'this server cannot sign certificates until it holds the active root key',
      );
    }
  }

  /**
   * Runs maintenance while this server leads: at once (a previous leader may have died with
   * work due), then at the next due time, at least every MAX_CHECK_MS so that configuration
   * changes are seen. `stop()` ends it; a later `start()` begins a new schedule.
   */
  start(): void {
    const generation = ++this.#generation;
    this.#running = true;
    const run = (): void => {
      this.#timer = undefined;
      this.maintain()
        .then(
          () => nextMaintenanceIn(this.#o.state.ca, this.#o.clock.now(), this.#skewMs),
          (err: unknown) => {
            this.#o.log.error({ err: String(err) }, 'CA maintenance failed; will retry');
            return RETRY_MS;
          },
        )
        .then((delay) => {
          // Stopped (or restarted) while the check ran: that schedule is over.
          if (!this.#running || generation !== this.#generation) return;
          this.#timer = this.#o.clock.setTimeout(run, delay);
        })
        .catch(() => undefined);
    };
    run();
  }

  stop(): void {
    this.#running = false;
    this.#generation++;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Rotation when the root is older than RotationPeriod; pruning of roots no leaf needs. */
  async maintain(): Promise<void> {
    const ca = this.#o.state.ca;
    const active = ca.active();
    if (!active) return;
    const now = this.#o.clock.now();
    const rotateAt = rotationDueAt(ca.config, active);
    if (rotateAt !== undefined && now >= rotateAt) {
      this.#o.log.info({ root: active.ID }, 'root reached its RotationPeriod; rotating');
      await this.rotate();
    }
    const expired = ca.roots.filter((r) => {
      const at = pruneDueAt(ca.config, r, this.#skewMs);
      return at !== undefined && now >= at;
    });
    if (expired.length > 0) {
      const roots = expired.map((r) => r.ID);
      await this.#audited('ca.prune', INTERNAL_ACTOR, { roots }, () =>
        this.#o.propose({ type: 'ca-prune', ids: roots }),
      );
      this.#o.log.info({ roots }, 'dropped roots whose leaves have all expired');
    }
  }

  /**
   * Makes a new active root (ours, or an imported key and certificate) cross-signed by the old
   * one. Leaves are re-issued by agents as they see the new active root.
   */
  rotate(
    imported?: { keyPem: string; certPem: string },
    actor: AuditActor = INTERNAL_ACTOR,
  ): Promise<CaRootRow> {
    // Callers that arrive during a rotation share it: one rotation, one audit line.
    this.#rotating ??= (async () => {
      const from = this.#o.state.ca.active()?.ID ?? '';
      const fields = { from, imported: imported !== undefined };
      try {
        const root = await this.#rotate(imported);
        this.#audit.ca('ca.rotate', actor, { ...fields, to: root.ID });
        return root;
      } catch (err) {
        this.#audit.ca(
          'ca.rotate',
          actor,
          fields,
          err instanceof Error ? err.message : String(err),
        );
        throw err;
      }
    })().finally(() => {
      this.#rotating = undefined;
    });
    return this.#rotating;
  }

  async #rotate(imported?: { keyPem: string; certPem: string }): Promise<CaRootRow> {
    const ca = this.#o.state.ca;
    const old = ca.active();
    if (!old) throw caError('the CA is not initialized yet', 503);
    const oldKey = await this.#keyFor(old.ID);
    const nowMs = this.#o.clock.now();
    const now = new Date(nowMs);
    let newRoot: NewCaRoot;
    let newKey: KeyObject;
    let keyPem: string;
    if (imported) {
      newKey = loadPrivateKey(imported.keyPem);
      if (!keyMatchesCert(newKey, imported.certPem))
        throw caError('Config.PrivateKey: does not match Config.RootCert', 400);
      newRoot = { ...describeRoot(imported.certPem, ca.trustDomain), ExternalTrustDomain: '' };
      keyPem = imported.keyPem;
    } else {
      const g = generateRoot({
        clusterId: ca.clusterId,
        trustDomain: ca.trustDomain,
        ttlMs: durationMs(ca.config.RootCertTTL),
        now,
      });
      newRoot = { ...g.root, ExternalTrustDomain: '' };
      newKey = loadPrivateKey(g.keyPem);
      keyPem = g.keyPem;
    }
    // The cross certificates must outlive every leaf the old root signed.
    const crossTtl = Math.max(7 * DAY_MS, 2 * durationMs(ca.config.LeafCertTTL));
    const forward = crossSign({
      newRootPem: newRoot.RootCert,
      oldRootPem: old.RootCert,
      oldRootKey: oldKey,
      now,
      ttlMs: crossTtl,
    });
    const backward = reverseCrossSign({
      newRootPem: newRoot.RootCert,
      newRootKey: newKey,
      oldRootPem: old.RootCert,
      now,
      ttlMs: crossTtl,
    });
    // Stored (fsynced, or committed by etcd) before the root is proposed.
    await this.#o.keys.write(newRoot.ID, keyPem);
    await this.#o.propose({
      type: 'ca-rotate',
      previousId: old.ID,
      root: { ...newRoot, IntermediateCerts: [forward] },
      successorCrossCert: backward,
      at: now.toISOString(),
    });
    await this.#loadSigner();
    this.#o.log.info({ from: old.ID, to: newRoot.ID }, 'CA root rotated');
    return ca.active()!;
  }

  async setConfig(config: CaConfig, actor: AuditActor = INTERNAL_ACTOR): Promise<void> {
    const old = this.#o.state.ca.config as unknown as Record<string, unknown>;
    const next = config as unknown as Record<string, unknown>;
    // Names of the settings that change, never their values (a value could be key material).
    const changed = [...new Set([...Object.keys(old), ...Object.keys(next)])]
      .filter((k) => JSON.stringify(old[k]) !== JSON.stringify(next[k]))
      .sort();
    try {
      await this.#o.propose({ type: 'ca-config', config });
    } catch (err) {
      this.#audit.ca(
        'ca.config',
        actor,
        { changed },
        err instanceof Error ? err.message : String(err),
      );
      throw err;
    }
    this.#audit.ca('ca.config', actor, { changed });
  }

  /** SHA-256 of the active root, which a new host pins when it joins. */
  fingerprint(): string {
    const active = this.#o.state.ca.active();
    return active ? caFingerprint(active.RootCert) : '';
  }

  signService(
    service: string,
    csrPem: string,
    actor: AuditActor = INTERNAL_ACTOR,
  ): Promise<IssuedCert> {
    const uri = serviceSpiffeId(this.trustDomain, this.#o.datacenter, service);
    return this.#audited(
      'ca.sign',
      actor,
      { kind: 'service', service },
      async () =>
        this.#issued(await this.#sign(csrPem, uri), { Service: service, ServiceURI: uri }),
      issuedFields,
    );
  }

  signAgent(node: string, csrPem: string, actor: AuditActor = INTERNAL_ACTOR): Promise<IssuedCert> {
    const uri = agentSpiffeId(this.trustDomain, this.#o.datacenter, node);
    return this.#audited(
      'ca.sign',
      actor,
      { kind: 'agent', node },
      async () =>
        this.#issued(
          await this.#sign(csrPem, uri, {
            dnsNames: ['localhost'],
            ipAddresses: ['127.0.0.1', '::1'],
          }),
          { Agent: node, AgentURI: uri },
        ),
      issuedFields,
    );
  }

  /** A certificate for this server's HTTPS API: server identity, its names and addresses. */
  signServer(csrPem: string, dnsNames: string[], ipAddresses: string[]): Promise<IssuedCert> {
    const uri = `spiffe://${this.trustDomain}/agent/server/dc/${this.#o.datacenter}`;
    return this.#audited(
      'ca.sign',
      INTERNAL_ACTOR,
      { kind: 'server' },
      async () => this.#issued(await this.#sign(csrPem, uri, { dnsNames, ipAddresses }), {}),
      issuedFields,
    );
  }

  /** Every root a peer should trust now (PEM bundle). */
  rootsPem(): string {
    return this.#o.state.ca.roots.map((r) => r.RootCert).join('');
  }

  async #sign(
    csrPem: string,
    uri: string,
    allow: { dnsNames?: string[]; ipAddresses?: string[] } = {},
  ): Promise<SignedLeaf & { root: CaRootRow }> {
    const s = await this.#currentSigner();
    const ca = this.#o.state.ca;
    const signed = signLeaf({
      csrPem,
      expectedUri: uri,
      signerKey: s.key,
      signerCertPem: s.certPem,
      ttlMs: durationMs(ca.config.LeafCertTTL),
      now: new Date(this.#o.clock.now()),
      ...allow,
    });
    return { ...signed, root: ca.active()! };
  }

  #issued(
    s: SignedLeaf & { root: CaRootRow },
    who: Partial<Pick<IssuedCert, 'Service' | 'ServiceURI' | 'Agent' | 'AgentURI'>>,
  ): IssuedCert {
    // While the previous root is still trusted somewhere, peers holding only it need the
    // cross-signed copy of the new root to verify this leaf.
    const previousKnown = this.#o.state.ca.roots.some((r) => !r.Active);
    const chain = previousKnown ? (s.root.IntermediateCerts ?? []) : [];
    const index = this.#o.state.lastIndex;
    return {
      SerialNumber: s.serialNumber,
      CertPEM: s.certPem + chain.join(''),
      ...who,
      ValidAfter: s.validAfter,
      ValidBefore: s.validBefore,
      RootID: s.root.ID,
      CreateIndex: index,
      ModifyIndex: index,
    };
  }

  async #currentSigner(): Promise<{ key: KeyObject; certPem: string }> {
    const active = this.#o.state.ca.active();
    if (!active) throw caError('the CA is not initialized yet', 503);
    if (this.#signer?.rootId === active.ID) return this.#signer;
    // A root rotated by another server of a shared store: its key is fetched once, here.
    return this.#loadSigner();
  }

  async #loadSigner(): Promise<{ rootId: string; key: KeyObject; certPem: string }> {
    const active = this.#o.state.ca.active();
    if (!active) throw caError('the CA is not initialized yet', 503);
    const signer = {
      rootId: active.ID,
      key: await this.#keyFor(active.ID),
      certPem: active.RootCert,
    };
    // Keep the newest: a slower load of an older root must not replace it.
    if (this.#o.state.ca.active()?.ID === signer.rootId) this.#signer = signer;
    return signer;
  }

  async #keyFor(rootId: string): Promise<KeyObject> {
    const pem = await this.#o.keys.read(rootId);
    if (!pem)
      throw caError(
        `the private key of CA root ${rootId} is missing from ${this.#o.keys.where(rootId)}; ${
          this.#o.sharedState
            ? 'it was stored by the server that created the root; check that server kept it (docs/ha.md)'
            : "restore it from a backup of this server's data dir"
        }`,
      );
    return loadPrivateKey(pem);
  }
}

/** When the active root reaches its RotationPeriod (ms), or undefined when it never rotates. */
export function rotationDueAt(config: CaConfig, active: CaRootRow): number | undefined {
  const period = durationMs(config.RotationPeriod);
  return period > 0 ? Date.parse(active.NotBefore) + period + 1 : undefined;
}

/**
 * When a rotated-out root may go (ms): every leaf it signed has expired, with a margin for
 * clocks. Undefined for the active root.
 */
export function pruneDueAt(
  config: CaConfig,
  root: CaRootRow,
  skewMs = CLOCK_SKEW_MS,
): number | undefined {
  if (root.Active || root.RotatedOutAt === undefined) return undefined;
  return Date.parse(root.RotatedOutAt) + durationMs(config.LeafCertTTL) + skewMs + 1;
}

/**
 * How long to wait (ms) before the next maintenance check: until the next rotation or pruning
 * is due, between MIN_CHECK_MS (work due now was just attempted) and MAX_CHECK_MS.
 */
export function nextMaintenanceIn(
  ca: { config: CaConfig; roots: readonly CaRootRow[] },
  now: number,
  skewMs = CLOCK_SKEW_MS,
): number {
  let next = now + MAX_CHECK_MS;
  for (const r of ca.roots) {
    const at = r.Active ? rotationDueAt(ca.config, r) : pruneDueAt(ca.config, r, skewMs);
    if (at !== undefined) next = Math.min(next, at);
  }
  return Math.max(MIN_CHECK_MS, next - now);
}

/** What an audit line records of an issued certificate. */
function issuedFields(c: IssuedCert): object {
  return { serial: c.SerialNumber, root: c.RootID, validBefore: c.ValidBefore };
}
