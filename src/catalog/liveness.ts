/**
 * Node liveness: agents heartbeat their node; a node whose heartbeats stop has its serfHealth
 * check turned critical, so `health service --passing` drops its instances. Deadlines live in
 * memory only: after a server restart every node gets one grace period to heartbeat again.
 *
 * Every server records the heartbeats it receives; only the leader judges. With several servers
 * (etcd) it uses what every server heard (`HeardElsewhere`, catalog/etcd/heard-nodes.ts): a node
 * turns critical only when no server heard it within its TTL. A node the leader knew nothing
 * fresher about when it took over gets one grace period from then.
 */
import { SERF_CHECK_ID, SERF_CHECK_NAME } from '../api/index.js';
import type { Clock, Timer } from '../core/index.js';
import type { StateStore } from './state/state-store.js';
import type { CommandLog } from './state/command-log.js';
import type { Leadership } from './leadership.js';

/** What is known of a node's last heartbeat: until when it is alive, and when that was heard. */
export interface HeardNode {
  deadline: number;
  heardAt: number;
}

/** Heartbeats other servers received (each server publishes its own). */
export interface HeardElsewhere {
  heard(node: string): HeardNode | undefined;
}

export interface LivenessOptions {
  clock: Clock;
  /** Time a node keeps after this server starts leading before it must have heartbeated (ms). */
  graceMs: number;
  /** Only the leader judges nodes. */
  leadership: Leadership;
  /** Heartbeats received by the other servers (none with one server). */
  elsewhere?: HeardElsewhere;
  /** How often deadlines are checked (ms). */
  sweepMs?: number;
  /** Nodes never reaped (this server's own). */
  selfNode: string;
  datacenter: string;
  /** A node critical this long is removed from the catalog (Consul: 72h). */
  reapAfterMs?: number;
  log: { warn(obj: object, msg: string): void };
}

export const ALIVE_OUTPUT = 'Agent alive and reachable';
export const DEAD_OUTPUT = 'Agent not live or unreachable';

export class Liveness {
  readonly #heard = new Map<string, HeardNode>();
  /** When the leader first saw each node passing without knowing of a heartbeat (its grace). */
  readonly #firstSeen = new Map<string, number>();
  /** When each node was first seen with a critical serfHealth (memory only, like deadlines). */
  readonly #criticalSince = new Map<string, number>();
  readonly #state: StateStore;
  readonly #writer: CommandLog;
  readonly #opts: LivenessOptions;
  #timer: Timer | null = null;

  constructor(state: StateStore, writer: CommandLog, opts: LivenessOptions) {
    this.#state = state;
    this.#writer = writer;
    this.#opts = opts;
  }

  start(): void {
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
    const now = this.#opts.clock.now();
    this.#heard.set(hb.node, { deadline: now + hb.ttlMs, heardAt: now });
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

  /** The nodes this server heard from: node -> deadline (published for the leader). */
  heardHere(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [node, h] of this.#heard) out.set(node, h.deadline);
    return out;
  }

  /** Forgets a node that left on purpose (its registration is removed by the caller). */
  forget(node: string): void {
    this.#heard.delete(node);
    this.#firstSeen.delete(node);
    this.#criticalSince.delete(node);
  }

  /**
   * Turns serfHealth critical for every node whose deadline passed, and removes nodes that have
   * stayed critical for `reapAfterMs` (their agents are gone for good).
   */
  async sweep(): Promise<void> {
    const now = this.#opts.clock.now();
    const since = this.#opts.leadership.leaderSince();
    if (since === undefined || !this.#opts.leadership.isLeader()) {
      // Not the leader: judge nothing; a later leadership counts critical time afresh.
      this.#criticalSince.clear();
      this.#firstSeen.clear();
      for (const [node, h] of this.#heard) if (h.deadline < now) this.#heard.delete(node);
      return;
    }
    const reapAfter = this.#opts.reapAfterMs ?? 72 * 3_600_000;
    // A server's node is alive while the server is (its entry among the live servers).
    const servers = new Set(this.#opts.leadership.servers().map((s) => s.node));
    for (const [node, byId] of this.#state.catalog.checksByNode) {
      if (node === this.#opts.selfNode || servers.has(node)) continue;
      const serf = byId.get(SERF_CHECK_ID);
      if (!serf) continue;
      if (serf.Status === 'critical') {
        this.#firstSeen.delete(node);
        const criticalFrom = this.#criticalSince.get(node) ?? now;
        this.#criticalSince.set(node, criticalFrom);
        if (now - criticalFrom < reapAfter) continue;
        this.#opts.log.warn({ node }, 'node critical for too long; removing it from the catalog');
        try {
          await this.#writer.propose({ type: 'deregister', node, at: now });
          this.forget(node);
        } catch (err) {
          this.#opts.log.warn({ err, node }, 'could not remove the node; will retry');
        }
        continue;
      }
      if (this.#deadlineOf(node, since) > now) continue;
      if (!this.#opts.leadership.isLeader()) return; // lost it during this sweep
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

  /**
   * Until when a node counts as alive: the latest deadline any server heard; what was heard
   * before this server started leading gets at least the grace from then, and a node nobody
   * reported yet the grace from when this leader first saw it (reports take up to ~2 s).
   */
  #deadlineOf(node: string, leaderSince: number): number {
    const h = latest(this.#heard.get(node), this.#opts.elsewhere?.heard(node));
    if (!h) {
      // Registered (or healed) through another server whose report has not arrived yet.
      const seen = this.#firstSeen.get(node) ?? this.#opts.clock.now();
      this.#firstSeen.set(node, seen);
      return Math.max(leaderSince, seen) + this.#opts.graceMs;
    }
    const grace = leaderSince + this.#opts.graceMs;
    return h.heardAt >= leaderSince ? h.deadline : Math.max(h.deadline, grace);
  }
}

/** The later of two heartbeat records. */
function latest(a: HeardNode | undefined, b: HeardNode | undefined): HeardNode | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.deadline >= b.deadline ? a : b;
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
