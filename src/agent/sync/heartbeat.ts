/**
 * Tells the servers this node is alive, every `intervalMs`, valid for `ttlMs`. If heartbeats
 * stop (the host or agent died), the server turns the node's serfHealth critical after ttlMs.
 */
import type { TrellisClient } from '../../client/index.js';
import { describeError, formatDuration, type Clock, type Timer } from '../../core/index.js';
import type { NodeInfo } from './anti-entropy.js';

export interface HeartbeatOptions {
  client: TrellisClient;
  node: NodeInfo;
  clock: Clock;
  intervalMs: number;
  ttlMs: number;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export class Heartbeat {
  readonly #o: HeartbeatOptions;
  #timer: Timer | null = null;
  #stopped = true;
  #failing = false;

  constructor(opts: HeartbeatOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#stopped = false;
    void this.#beat();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #beat(): Promise<void> {
    const { client, node } = this.#o;
    try {
      await client.request({
        method: 'PUT',
        path: '/v1/internal/trellis/heartbeat',
        body: {
          Node: node.node,
          ID: node.nodeId,
          Address: node.address,
          TTL: formatDuration(this.#o.ttlMs),
          Meta: node.meta,
        },
      });
      if (this.#failing) this.#o.log.info({}, 'heartbeats reach the servers again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#o.log.warn({ err: describeError(err) }, 'heartbeat failed');
      this.#failing = true;
    }
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => void this.#beat(), this.#o.intervalMs);
    this.#timer.unref?.();
  }

  /** Leaves the cluster on purpose: the server removes this node from the catalog. */
  async leave(): Promise<void> {
    this.stop();
    await this.#o.client.request({
      method: 'PUT',
      path: `/v1/internal/trellis/leave/${encodeURIComponent(this.#o.node.node)}`,
    });
  }
}
