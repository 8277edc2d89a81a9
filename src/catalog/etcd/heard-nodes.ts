/**
 * Node heartbeats arrive at whichever server an agent talks to. So that the leader can judge
 * every node without one etcd write per heartbeat, each server publishes what it heard, at most
 * once per `publishEveryMs`, under its lease:
 *
 *   <prefix>/alive/<node id> = {"nodes": {"<node>": <ms left of its TTL>}}
 *
 * Every server watches these keys (so a newly elected leader already knows them). A report's
 * time left is counted from when it arrived here, not from the sender's clock, so server clocks
 * need not agree; one publishing period is added, since the report may be that late.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Clock, Timer } from '../../core/index.js';
import type { HeardElsewhere, HeardNode } from '../liveness.js';
import { etcdCause } from './etcd-errors.js';
import { PrefixView } from './prefix-view.js';
import type { ServerLease } from './server-lease.js';

export interface HeardNodesOptions {
  prefix: string;
  selfId: string;
  clock: Clock;
  log: { warn(obj: object, msg: string): void };
  /** This server's own heard nodes: node -> deadline (ms, this server's clock). */
  heardHere: () => ReadonlyMap<string, number>;
  publishEveryMs?: number;
}

/** Forget a remote report this long after its deadline (it can no longer matter). */
const FORGET_AFTER_MS = 10 * 60_000;

export class HeardNodes implements HeardElsewhere {
  readonly #client: Etcd3;
  readonly #lease: ServerLease;
  readonly #o: HeardNodesOptions;
  readonly #view: PrefixView;
  readonly #remote = new Map<string, HeardNode>();
  #timer: Timer | null = null;
  #lastPublished = '';

  constructor(client: Etcd3, lease: ServerLease, opts: HeardNodesOptions) {
    this.#client = client;
    this.#lease = lease;
    this.#o = opts;
    this.#view = new PrefixView(client, `${opts.prefix}/alive/`, opts.log);
    this.#view.onChange((key, kv) => {
      if (kv && key !== opts.selfId) this.#learn(kv);
    });
  }

  async start(): Promise<void> {
    await this.#view.start();
    const every = this.#o.publishEveryMs ?? 2_000;
    const tick = (): void => {
      void this.#publish().finally(() => {
        if (this.#timer) this.#timer = this.#o.clock.setTimeout(tick, every);
      });
    };
    this.#timer = this.#o.clock.setTimeout(tick, every);
  }

  heard(node: string): HeardNode | undefined {
    return this.#remote.get(node);
  }

  async close(): Promise<void> {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    await this.#view.close();
  }

  #learn(kv: IKeyValue): void {
    let nodes: Record<string, unknown>;
    try {
      nodes = (JSON.parse(kv.value.toString()) as { nodes?: Record<string, unknown> }).nodes ?? {};
    } catch {
      return;
    }
    const now = this.#o.clock.now();
    const slack = this.#o.publishEveryMs ?? 2_000;
    for (const [node, left] of Object.entries(nodes)) {
      if (typeof left !== 'number' || !(left > 0)) continue;
      const deadline = now + left + slack;
      const known = this.#remote.get(node);
      if (!known || known.deadline < deadline) this.#remote.set(node, { deadline, heardAt: now });
    }
  }

  async #publish(): Promise<void> {
    const now = this.#o.clock.now();
    for (const [node, h] of this.#remote)
      if (h.deadline < now - FORGET_AFTER_MS) this.#remote.delete(node);
    const leaseId = this.#lease.id();
    if (leaseId === undefined) return;
    const nodes: Record<string, number> = {};
    const deadlines: [string, number][] = [];
    for (const [node, deadline] of this.#o.heardHere()) {
      if (deadline <= now) continue;
      nodes[node] = deadline - now;
      deadlines.push([node, deadline]);
    }
    // No heartbeat since the last report (same deadlines, same lease): nothing to write.
    const signature = `${leaseId} ${JSON.stringify(deadlines)}`;
    if (signature === this.#lastPublished) return;
    const value = JSON.stringify({ nodes });
    try {
      await this.#client
        .put(`${this.#o.prefix}/alive/${this.#o.selfId}`)
        .value(value)
        .lease(leaseId)
        .exec();
      this.#lastPublished = signature;
    } catch (err) {
      this.#o.log.warn({ err: etcdCause(err) }, 'could not publish heard nodes to etcd');
    }
  }
}
