/**
 * This server's etcd lease: the leader candidacy, the servers registry entry and the heard-nodes
 * report all live under it, so they vanish together when the server dies (TTL about 5 s).
 *
 * etcd expires a lease TTL seconds after the last keepalive it received. This side only knows
 * when it SENT keepalives, so the lease is "fresh" until (send time of the last acknowledged
 * keepalive) + TTL - a margin: past that, etcd may already have expired it and another server
 * may lead. The etcd3 client itself reports a lost lease only after 2 x TTL, too late to stop
 * leading in time, hence this bookkeeping. A lease etcd reports expired is replaced by a new one
 * and the owners put their keys again (`onGranted`).
 */
import type { Etcd3, Lease } from 'etcd3';
import { describeError, type Clock, type Timer } from '../../core/index.js';
import { etcdCause } from './etcd-errors.js';

export interface ServerLeaseOptions {
  ttlSec: number;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Stop trusting the lease this long before it could have expired (ms, default 1000). */
  marginMs?: number;
}

export class ServerLease {
  readonly #client: Etcd3;
  readonly #o: ServerLeaseOptions;
  readonly #freshListeners: ((fresh: boolean) => void)[] = [];
  readonly #grantedListeners: ((leaseId: string) => void)[] = [];
  #lease: Lease | null = null;
  #id: string | undefined;
  /** Send times of keepalives not yet acknowledged, oldest first (the stream answers in order). */
  #inFlight: number[] = [];
  #validUntil = 0;
  #wasFresh = false;
  #checkTimer: Timer | null = null;
  #closed = false;

  constructor(client: Etcd3, opts: ServerLeaseOptions) {
    this.#client = client;
    this.#o = opts;
  }

  /** Grants the first lease; rejects when etcd cannot be reached. */
  async start(): Promise<void> {
    await this.#grant();
    const check = (): void => {
      this.#emitFreshness();
      if (!this.#closed) this.#checkTimer = this.#o.clock.setTimeout(check, 200);
    };
    check();
  }

  /** The current lease id (decimal string), or undefined while a new one is being granted. */
  id(): string | undefined {
    return this.#id;
  }

  /** True while etcd certainly still holds the lease. */
  fresh(): boolean {
    const margin = this.#o.marginMs ?? 1_000;
    return this.#id !== undefined && this.#o.clock.now() < this.#validUntil - margin;
  }

  onFresh(fn: (fresh: boolean) => void): void {
    this.#freshListeners.push(fn);
  }

  /** Called with each new lease (the first one too): put the keys that live under it. */
  onGranted(fn: (leaseId: string) => void): void {
    this.#grantedListeners.push(fn);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#checkTimer) this.#o.clock.clearTimeout(this.#checkTimer);
    const lease = this.#lease;
    this.#lease = null;
    this.#id = undefined;
    // Revoking deletes this server's keys at once, so the others elect without waiting a TTL.
    await lease?.revoke({ deadline: this.#o.clock.now() + 2_000 }).catch(() => undefined);
  }

  async #grant(): Promise<void> {
    const askedAt = this.#o.clock.now();
    const lease = this.#client.lease(this.#o.ttlSec);
    lease.on('keepaliveEstablished', () => (this.#inFlight = []));
    lease.on('keepaliveFired', () => this.#inFlight.push(this.#o.clock.now()));
    lease.on('keepaliveSucceeded', () => {
      const sentAt = this.#inFlight.shift() ?? this.#o.clock.now();
      this.#validUntil = Math.max(this.#validUntil, sentAt + this.#o.ttlSec * 1000);
      this.#emitFreshness();
    });
    lease.on('lost', (err: unknown) => this.#onLost(lease, err));
    this.#lease = lease;
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      if (this.#lease === lease) this.#lease = null;
      throw err;
    }
    if (this.#lease !== lease) {
      // Closed (or replaced) while etcd granted it: nothing will use it, and its keepalives
      // would hold it in etcd and keep this process from exiting.
      if (!lease.revoked())
        await lease.revoke({ deadline: this.#o.clock.now() + 2_000 }).catch(() => undefined);
      return;
    }
    this.#id = id;
    this.#validUntil = askedAt + this.#o.ttlSec * 1000;
    for (const fn of this.#grantedListeners) fn(id);
    this.#emitFreshness();
  }

  #onLost(lease: Lease, err: unknown): void {
    // A grant that failed is also reported as lost: whoever asked for it (start, #regrant)
    // retries it, so a second chain of grants must not start here (it would leak a lease).
    if (this.#closed || this.#lease !== lease || this.#id === undefined) return;
    this.#o.log.warn(
      { err: etcdCause(err), lease: this.#id },
      'etcd lease lost; this server stops leading and asks for a new lease',
    );
    this.#lease = null;
    this.#id = undefined;
    this.#validUntil = 0;
    this.#emitFreshness();
    void this.#regrant(0);
  }

  async #regrant(attempt: number): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#grant();
      this.#o.log.info({ lease: this.#id }, 'new etcd lease granted');
    } catch (err) {
      if (attempt === 0)
        this.#o.log.warn({ err: describeError(err) }, 'could not get a new etcd lease; retrying');
      const wait = Math.min(2_000, 100 * 2 ** attempt);
      this.#o.clock.setTimeout(() => void this.#regrant(attempt + 1), wait);
    }
  }

  #emitFreshness(): void {
    const fresh = this.fresh();
    if (fresh === this.#wasFresh) return;
    this.#wasFresh = fresh;
    for (const fn of this.#freshListeners) fn(fresh);
  }
}
