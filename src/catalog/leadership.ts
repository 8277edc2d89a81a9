/**
 * Which server of the cluster does the work that must happen once (session TTL expiry, node
 * liveness, CA rotation and pruning), and which servers are alive. With the embedded store the
 * one server always leads; with etcd the servers elect one (catalog/etcd/etcd-leadership.ts).
 */

/** One live server, as every server publishes itself. */
export interface ServerInfo {
  /** The server's node id (UUID kept in its data dir). */
  id: string;
  /** Its node name. */
  node: string;
  /** Its RPC-style address, "ip:8300", the form Consul's status endpoints answer. */
  address: string;
  /** When it started (ms since the epoch, its own clock). */
  started: number;
}

export interface Leadership {
  /** True while this server is the elected leader and sure of it (its lease is fresh). */
  isLeader(): boolean;
  /** The elected leader, or undefined when there is none (or this server cannot tell). */
  leader(): ServerInfo | undefined;
  /** Every live server, this one included. */
  servers(): ServerInfo[];
  /** Since when this server leads (ms), or undefined when it does not. */
  leaderSince(): number | undefined;
  /** Called after any change of the leader or of the servers. */
  onChange(fn: () => void): void;
  close(): Promise<void>;
}

/** The embedded store: one server, always the leader. */
export class SoloLeadership implements Leadership {
  readonly #self: ServerInfo;

  constructor(self: ServerInfo) {
    this.#self = self;
  }

  isLeader(): boolean {
    return true;
  }
  leader(): ServerInfo {
    return this.#self;
  }
  servers(): ServerInfo[] {
    return [this.#self];
  }
  leaderSince(): number {
    return this.#self.started;
  }
  onChange(): void {}
  async close(): Promise<void> {}
}
