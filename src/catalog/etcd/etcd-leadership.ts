/**
 * Leader election and the live servers registry over etcd, both under this server's lease:
 *
 *   <prefix>/leader/<lease id>   = ServerInfo JSON, created once per lease (a candidacy)
 *   <prefix>/servers/<node id>   = ServerInfo JSON
 *
 * The leader is the candidate whose key was created first (lowest create revision), etcd's own
 * election recipe: when the leader's lease expires its key goes, and the next oldest leads. A
 * server leads only while its key is the oldest AND its lease is fresh (server-lease.ts), so a
 * server cut off from etcd stops leading before etcd can expire its lease and elect another.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Clock } from '../../core/index.js';
import type { Leadership, ServerInfo } from '../leadership.js';
import { etcdCause } from './etcd-errors.js';
import { PrefixView } from './prefix-view.js';
import type { ServerLease } from './server-lease.js';

export interface EtcdLeadershipOptions {
  prefix: string;
  self: ServerInfo;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class EtcdLeadership implements Leadership {
  readonly #client: Etcd3;
  readonly #lease: ServerLease;
  readonly #o: EtcdLeadershipOptions;
  readonly #candidates: PrefixView;
  readonly #registry: PrefixView;
  readonly #listeners: (() => void)[] = [];
  /** This server's candidacy key suffix (its lease id), once put. */
  #myCandidacy: string | undefined;
  #leading = false;
  #since: number | undefined;
  #lastLeader: string | undefined;
  #closed = false;

  constructor(client: Etcd3, lease: ServerLease, opts: EtcdLeadershipOptions) {
    this.#client = client;
    this.#lease = lease;
    this.#o = opts;
    this.#candidates = new PrefixView(client, `${opts.prefix}/leader/`, opts.log);
    this.#registry = new PrefixView(client, `${opts.prefix}/servers/`, opts.log);
    this.#candidates.onChange(() => this.#update());
    this.#registry.onChange(() => this.#emit());
    lease.onFresh(() => this.#update());
    lease.onGranted((id) => void this.#announce(id));
  }

  /** Reads the candidates and servers and starts watching them (the lease is granted first). */
  async start(): Promise<void> {
    await Promise.all([this.#candidates.start(), this.#registry.start()]);
    const id = this.#lease.id();
    if (id !== undefined && this.#myCandidacy !== id) await this.#announce(id);
    this.#update();
  }

  isLeader(): boolean {
    return this.#leading && this.#lease.fresh();
  }

  leader(): ServerInfo | undefined {
    // Cut off from etcd (no quorum, partition), this server's view may be stale: it names no
    // leader rather than one that may be gone (and it does not lead itself).
    if (!this.#lease.fresh()) return undefined;
    return this.#oldestCandidate()?.info;
  }

  servers(): ServerInfo[] {
    const out: ServerInfo[] = [];
    for (const kv of this.#registry.entries().values()) {
      const info = parseInfo(kv);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }

  leaderSince(): number | undefined {
    return this.isLeader() ? this.#since : undefined;
  }

  onChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#leading = false;
    await Promise.all([this.#candidates.close(), this.#registry.close()]);
  }

  /** Puts this server's registry entry and candidacy under a (new) lease; retries until done. */
  async #announce(leaseId: string): Promise<void> {
    const value = JSON.stringify(this.#o.self);
    const candidacy = `${this.#o.prefix}/leader/${leaseId}`;
    for (let attempt = 0; !this.#closed && this.#lease.id() === leaseId; attempt++) {
      try {
        await this.#client
          .put(`${this.#o.prefix}/servers/${this.#o.self.id}`)
          .value(value)
          .lease(leaseId)
          .exec();
        await this.#client
          .if(candidacy, 'Create', '==', 0)
          .then(this.#client.put(candidacy).value(value).lease(leaseId))
          .commit();
        this.#myCandidacy = leaseId;
        this.#update();
        return;
      } catch (err) {
        if (attempt === 0)
          this.#o.log.warn(
            { err: etcdCause(err) },
            'could not register this server in etcd; retrying',
          );
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  #oldestCandidate(): { key: string; info: ServerInfo } | undefined {
    let best: IKeyValue | undefined;
    let bestKey = '';
    for (const [key, kv] of this.#candidates.entries()) {
      if (!best || BigInt(kv.create_revision) < BigInt(best.create_revision)) {
        best = kv;
        bestKey = key;
      }
    }
    const info = best && parseInfo(best);
    return info ? { key: bestKey, info } : undefined;
  }

  #update(): void {
    if (this.#closed) return;
    const oldest = this.#oldestCandidate();
    const leading = oldest !== undefined && oldest.key === this.#myCandidacy && this.#lease.fresh();
    const leaderNow = this.leader()?.id;
    if (leading === this.#leading && leaderNow === this.#lastLeader) return;
    if (leading !== this.#leading) {
      this.#leading = leading;
      this.#since = leading ? this.#o.clock.now() : undefined;
      this.#o.log.info(
        { leader: leaderNow ?? null },
        leading ? 'this server is now the leader' : 'this server is no longer the leader',
      );
    }
    this.#lastLeader = leaderNow;
    this.#emit();
  }

  #emit(): void {
    for (const fn of this.#listeners) fn();
  }
}

function parseInfo(kv: IKeyValue): ServerInfo | undefined {
  try {
    const v = JSON.parse(kv.value.toString()) as Partial<ServerInfo>;
    if (typeof v.id !== 'string' || typeof v.node !== 'string' || typeof v.address !== 'string')
      return undefined;
    return { id: v.id, node: v.node, address: v.address, started: Number(v.started) || 0 };
  } catch {
    return undefined;
  }
}
