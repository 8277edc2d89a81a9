/**
 * Anti-entropy: makes the catalog's copy of this node match the agent's local state (local
 * wins). Each sync reads the node's services and checks from the catalog, registers what is
 * missing or different and deregisters what the agent no longer has. It runs soon after every
 * local change (coalesced) and periodically (interval + jitter) to repair anything the catalog
 * lost; a failed sync retries with backoff.
 */
import {
  SERF_CHECK_ID,
  type AgentService,
  type CatalogRegistration,
  type HealthCheck,
} from '../../api/index.js';
import type { TrellisClient } from '../../client/index.js';
import { describeError, jitter, type Clock, type Random, type Timer } from '../../core/index.js';
import type { LocalCheck, LocalService, LocalState } from '../local/local-state.js';

export interface NodeInfo {
  node: string;
  nodeId: string;
  address: string;
  datacenter: string;
  meta: Record<string, string>;
}

export interface AntiEntropyOptions {
  client: TrellisClient;
  local: LocalState;
  node: NodeInfo;
  clock: Clock;
  random: Random;
  /** Full-sync period (ms); default 60s, plus up to 1/8 jitter. */
  intervalMs?: number;
  /** Services the agent must never remove (the server's own `consul`). */
  protectedServices?: string[];
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30_000;
/** How long a local API write waits for its change to reach the servers before answering. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;

/** A caller of `flush()`: wants the catalog to match local state at `version`. */
interface FlushWaiter {
  version: number;
  done(synced: boolean): void;
}

export class AntiEntropy {
  readonly #o: AntiEntropyOptions;
  #timer: Timer | null = null;
  #running = false;
  #again = false;
  #stopped = true;
  #failures = 0;
  /** Local version the running sync started from (what it can at most bring the catalog to). */
  #runningVersion = -1;
  #waiters: FlushWaiter[] = [];
  /** Local version the catalog last matched. */
  syncedVersion = -1;
  lastError: string | null = null;

  constructor(opts: AntiEntropyOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#stopped = false;
    this.trigger();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#settle(Number.POSITIVE_INFINITY, false);
  }

  /**
   * Syncs the local state as it is now and resolves when the catalog has it (true), or when
   * the attempt failed or took longer than `timeoutMs` (false; anti-entropy keeps retrying).
   * The agent API awaits this before answering a write, as Consul's agent syncs a change
   * before it replies: a catalog read right after the reply sees the change.
   */
  flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<boolean> {
    const version = this.#o.local.version;
    if (this.syncedVersion >= version) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = this.#o.clock.setTimeout(() => finish(false), timeoutMs);
      const waiter: FlushWaiter = { version, done: (ok) => finish(ok) };
      const finish = (ok: boolean): void => {
        this.#o.clock.clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(ok);
      };
      this.#waiters.push(waiter);
      this.trigger();
    });
  }

  /** Ends the waits a finished sync answered: those for versions up to `version`. */
  #settle(version: number, synced: boolean): void {
    for (const w of this.#waiters.filter((x) => x.version <= version)) w.done(synced);
  }

  /** Asks for a sync as soon as possible (coalesced with one already running). */
  trigger(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => void this.#run(), ms);
    this.#timer.unref?.();
  }

  async #run(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    this.#running = true;
    this.#again = false;
    this.#runningVersion = this.#o.local.version;
    let next: number;
    try {
      await this.syncOnce();
      this.#failures = 0;
      this.lastError = null;
      this.#settle(this.syncedVersion, true);
      const interval = this.#o.intervalMs ?? 60_000;
      next = interval + jitter(this.#o.random, interval / 8);
    } catch (err) {
      this.#failures++;
      this.lastError = describeError(err);
      next = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(this.#failures, 10));
      next += jitter(this.#o.random, next / 4);
      this.#o.log.warn({ err: this.lastError, retryInMs: next }, 'catalog sync failed; will retry');
      // Callers waiting on this attempt answer now; the change reaches the catalog on a retry.
      this.#settle(this.#runningVersion, false);
    } finally {
      this.#running = false;
    }
    if (this.#stopped) return;
    this.#schedule(this.#again ? 0 : next);
  }

  /** One full comparison and repair. */
  async syncOnce(): Promise<void> {
    const { client, local, node } = this.#o;
    const version = local.version;
    const [catNode, catChecks] = await Promise.all([
      client.catalog.node(node.node),
      client.health.node(node.node),
    ]);
    const remoteServices = catNode.value?.Services ?? {};
    const remoteChecks = new Map<string, HealthCheck>(catChecks.value.map((c) => [c.CheckID, c]));
    const protectedIds = new Set(this.#o.protectedServices ?? []);
    const nodeChanged =
      !catNode.value ||
      catNode.value.Node.Address !== node.address ||
      JSON.stringify(catNode.value.Node.Meta) !== JSON.stringify(node.meta);

    // Remove what the agent no longer has.
    for (const id of Object.keys(remoteServices)) {
      if (!local.services.has(id) && !protectedIds.has(id)) {
        await client.catalog.deregister({ Node: node.node, ServiceID: id });
      }
    }
    for (const c of remoteChecks.values()) {
      if (c.CheckID === SERF_CHECK_ID || local.checks.has(c.CheckID)) continue;
      if (c.ServiceID && protectedIds.has(c.ServiceID)) continue;
      if (c.ServiceID && !local.services.has(c.ServiceID)) continue; // went with its service
      await client.catalog.deregister({ Node: node.node, CheckID: c.CheckID });
    }

    // The node (and its own checks) first, with the agent's token, so the service writes below
    // do not change the node and need only their own service's token.
    const nodeChecks = [...local.checks.values()]
      .filter((c) => c.check.ServiceID === '')
      .map((c) => c.check);
    const nodeChecksDiffer = nodeChecks.some((c) => !sameCheck(remoteChecks.get(c.CheckID), c));
    if (nodeChecksDiffer || nodeChanged) {
      await client.catalog.register(this.#registration(undefined, nodeChecks));
    }

    // Register services (with their checks) that are missing or differ.
    for (const entry of local.services.values()) {
      const svc = entry.service;
      const checks = local.checksOf(svc.ID);
      const remote = remoteServices[svc.ID];
      const differs =
        !remote ||
        !sameService(remote, svc) ||
        checks.some((c) => !sameCheck(remoteChecks.get(c.CheckID), c));
      if (!differs) continue;
      await client.catalog.register(
        this.#registration(svc, checks),
        entry.token ? { token: entry.token } : undefined,
      );
    }
    this.syncedVersion = version;
  }

  #registration(svc: LocalService | undefined, checks: LocalCheck[]): CatalogRegistration {
    const n = this.#o.node;
    const reg: CatalogRegistration = {
      ID: n.nodeId,
      Node: n.node,
      Address: n.address,
      TaggedAddresses: { lan: n.address, lan_ipv4: n.address, wan: n.address, wan_ipv4: n.address },
      NodeMeta: n.meta,
      Checks: checks.map((c) => ({
        Node: n.node,
        CheckID: c.CheckID,
        Name: c.Name,
        Notes: c.Notes,
        Status: c.Status,
        Output: c.Output,
        ServiceID: c.ServiceID,
        Type: c.Type,
        Interval: c.Interval,
        Timeout: c.Timeout,
        Definition: c.Definition,
      })),
    };
    if (svc) reg.Service = { ...svc };
    return reg;
  }
}

function sameService(remote: AgentService, local: LocalService): boolean {
  const { CreateIndex: _c, ModifyIndex: _m, Datacenter: _d, ...r } = remote;
  return JSON.stringify(sortKeys(r)) === JSON.stringify(sortKeys(local));
}

function sameCheck(remote: HealthCheck | undefined, c: LocalCheck): boolean {
  if (!remote) return false;
  return (
    remote.Status === c.Status &&
    remote.Output === c.Output &&
    remote.Name === c.Name &&
    remote.Notes === c.Notes &&
    remote.ServiceID === c.ServiceID &&
    remote.Type === c.Type &&
    remote.Interval === c.Interval &&
    remote.Timeout === c.Timeout &&
    JSON.stringify(sortKeys(remote.Definition ?? {})) === JSON.stringify(sortKeys(c.Definition))
  );
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
