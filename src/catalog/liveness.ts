/**
 * Node liveness: agents heartbeat their node; a node whose heartbeats stop has its serfHealth
 * check turned critical, so `health service --passing` drops its instances. Deadlines live in
 * memory only: after a server restart every node gets one grace period to heartbeat again.
 */
import { SERF_CHECK_ID, SERF_CHECK_NAME } from '../api/index.js';
import type { Clock, Timer } from '../core/index.js';
import type { StateStore } from './state/state-store.js';
import type { CommandLog } from './state/command-log.js';

export interface LivenessOptions {
  clock: Clock;
  /** Time a node keeps after a server start before it must have heartbeated (ms). */
  graceMs: number;
  /** How often deadlines are checked (ms). */
  sweepMs?: number;
  /** Nodes never reaped (this server's own). */
  selfNode: string;
  datacenter: string;
  /** A node critical this long is removed from the catalog (Consul: 72h). */
  reapAfterMs?: number;
  /**
   * Judge only nodes that heartbeated to this server (several servers share the catalog, and
   * an agent heartbeats to one of them): without it, every node this server has not heard
   * from since its start would turn critical after the grace.
   */
  onlyHeartbeatingNodes?: boolean;
  log: { warn(obj: object, msg: string): void };
}

export const ALIVE_OUTPUT = 'Agent alive and reachable';
export const DEAD_OUTPUT = 'Agent not live or unreachable';

export class Liveness {
  readonly #deadline = new Map<string, number>();
  /** When each node was first seen with a critical serfHealth (memory only, like deadlines). */
  readonly #criticalSince = new Map<string, number>();
  readonly #state: StateStore;
  readonly #writer: CommandLog;
  readonly #opts: LivenessOptions;
  #timer: Timer | null = null;
  #startedAt = 0;

  constructor(state: StateStore, writer: CommandLog, opts: LivenessOptions) {
    this.#state = state;
    this.#writer = writer;
    this.#opts = opts;
  }

  start(): void {
    this.#startedAt = this.#opts.clock.now();
    const tick = (): void => {
      void this.sweep().finally(() => {
        if (this.#timer)
          this.#timer = this.#opts.clock.setTimeout(tick, this.#opts.sweepMs ?? 1000);
      });
    };
    this.#timer = this.#opts.clock.setTimeout(tick, this.#opts.sweepMs ?? 1000);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) this.#opts.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Records a heartbeat; registers the node (and a passing serfHealth) when needed. */
  async heartbeat(hb: {
    node: string;
    address: string;
    ttlMs: number;
    nodeId: string;
    meta?: Record<string, string>;
  }): Promise<void> {
    this.#deadline.set(hb.node, this.#opts.clock.now() + hb.ttlMs);
    const node = this.#state.catalog.nodes.get(hb.node);
    const serf = this.#state.catalog.getCheck(hb.node, SERF_CHECK_ID);
    const addressChanged = node !== undefined && node.Address !== hb.address;
    if (node && !addressChanged && serf?.Status === 'passing') return;
    const result = await this.#writer.propose({
      type: 'register',
      node: {
        ID: hb.nodeId || node?.ID || '',
        Node: hb.node,
        Address: hb.address,
        Datacenter: this.#opts.datacenter,
        TaggedAddresses: {
          lan: hb.address,
          lan_ipv4: hb.address,
          wan: hb.address,
          wan_ipv4: hb.address,
        },
        Meta: hb.meta ?? node?.Meta ?? {},
      },
      skipNodeUpdate: false,
      checks: [serfCheck('passing', ALIVE_OUTPUT)],
    });
    if (!result.ok) throw new Error(result.error);
  }

  /** Forgets a node that left on purpose (its registration is removed by the caller). */
  forget(node: string): void {
    this.#deadline.delete(node);
    this.#criticalSince.delete(node);
  }

  /**
   * Turns serfHealth critical for every node whose deadline passed, and removes nodes that have
   * stayed critical for `reapAfterMs` (their agents are gone for good).
   */
  async sweep(): Promise<void> {
    const now = this.#opts.clock.now();
    const reapAfter = this.#opts.reapAfterMs ?? 72 * 3_600_000;
    for (const [node, byId] of this.#state.catalog.checksByNode) {
      if (node === this.#opts.selfNode) continue;
      const serf = byId.get(SERF_CHECK_ID);
      if (!serf) continue;
      if (serf.Status === 'critical') {
        const since = this.#criticalSince.get(node) ?? now;
        this.#criticalSince.set(node, since);
        if (now - since < reapAfter) continue;
        this.#opts.log.warn({ node }, 'node critical for too long; removing it from the catalog');
        try {
          await this.#writer.propose({ type: 'deregister', node, at: now });
          this.forget(node);
        } catch (err) {
          this.#opts.log.warn({ err, node }, 'could not remove the node; will retry');
        }
        continue;
      }
      const heard = this.#deadline.get(node);
      if (heard === undefined && this.#opts.onlyHeartbeatingNodes) continue;
      const deadline = heard ?? this.#startedAt + this.#opts.graceMs;
      if (deadline > now) continue;
      this.#opts.log.warn({ node }, 'node stopped heartbeating; marking serfHealth critical');
      try {
        await this.#writer.propose({
          type: 'check-status',
          at: now,
          node,
          checkID: SERF_CHECK_ID,
          status: 'critical',
          output: DEAD_OUTPUT,
        });
        this.#criticalSince.set(node, now);
      } catch (err) {
        this.#opts.log.warn({ err, node }, 'could not record node failure; will retry');
      }
    }
  }
}

export function serfCheck(status: 'passing' | 'critical', output: string) {
  return {
    CheckID: SERF_CHECK_ID,
    Name: SERF_CHECK_NAME,
    Status: status,
    Notes: '',
    Output: output,
    ServiceID: '',
    Type: '',
    Interval: '',
    Timeout: '',
    Definition: {},
  };
}
