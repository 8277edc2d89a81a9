/**
 * Leaf signing limits shared by every server on etcd: one token bucket per node at
 * <prefix>/sign-bucket/<node>, `{"tokens","at"}`. A signing reads the bucket, refills it, takes a
 * token and writes it back with a transaction that succeeds only if nobody wrote the bucket
 * since the read (compare on its mod revision, or on its absence); a conflict is read again and
 * retried. So a host asking three servers in turn gets the rate of one, not three.
 *
 * A bucket key lives under a lease that outlasts the time the bucket takes to be full again:
 * after that a missing key (a full bucket) means the same, so idle nodes leave nothing behind.
 * If etcd cannot answer, signing is refused with the error of any failed write (no fallback to
 * unlimited signing).
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { storageError, type Clock, type Random } from '../../core/index.js';
import { takeToken, type Bucket, type SigningLimits } from '../connect/rate-limit.js';
import { etcdCause } from './etcd-errors.js';
import type { CallDeadline } from './etcd-snapshots.js';

export interface EtcdSigningLimiterOptions {
  client: Etcd3;
  /** `<prefix>/sign-bucket/` */
  bucketPrefix: string;
  clock: Clock;
  random: Random;
  call: CallDeadline;
}

/** Writes that lost a race before the request counts as refused (the node is hammering us). */
const MAX_ATTEMPTS = 25;
/** The shortest lease granted: one lease serves many buckets for this long. */
const MIN_LEASE_SEC = 60;

export class EtcdSigningLimiter implements SigningLimits {
  readonly #o: EtcdSigningLimiterOptions;
  /** The lease new bucket writes go under, and until when (our clock) it surely lives. */
  #lease: { id: string; until: number } | undefined;

  constructor(opts: EtcdSigningLimiterOptions) {
    this.#o = opts;
  }

  async take(node: string, rate: number, now: number): Promise<boolean> {
    if (rate <= 0) return true;
    const key = Buffer.from(`${this.#o.bucketPrefix}${node}`);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        const r = await this.#o.client.kv.range({ key }, this.#o.call());
        const kv = r.kvs[0];
        const t = takeToken(kv ? bucketOf(kv) : undefined, rate, now);
        if (!t.allowed) return false;
        if (await this.#write(key, kv, t.bucket, t.fullInMs)) return true;
      } catch (err) {
        if (/lease not found/i.test(String(err))) {
          this.#lease = undefined; // expired under us: grant another and try again
          continue;
        }
        throw storageError(
          `could not check the certificate signing limit in etcd (it needs a quorum, a majority of etcd's members, up and reachable): ${etcdCause(err)}`,
          err,
        );
      }
      // Spread the retries of requests that raced, so they do not collide again.
      const wait = 2 + this.#o.random.next() * 20;
      await new Promise<void>((r) => this.#o.clock.setTimeout(r, wait));
    }
    return false;
  }

  /** Writes the bucket if it is unchanged since `read`; false when another write came first. */
  async #write(
    key: Buffer,
    read: IKeyValue | undefined,
    bucket: Bucket,
    fullInMs: number,
  ): Promise<boolean> {
    const lease = await this.#leaseFor(fullInMs);
    const tx = await this.#o.client.kv.txn(
      {
        compare: [
          read
            ? { key, target: 'Mod', result: 'Equal', mod_revision: read.mod_revision }
            : { key, target: 'Create', result: 'Equal', create_revision: 0 },
        ],
        success: [{ request_put: { key, value: Buffer.from(JSON.stringify(bucket)), lease } }],
      },
      this.#o.call(),
    );
    return tx.succeeded;
  }

  /** A lease that lives at least `ms` more; granted anew when the current one is too short. */
  async #leaseFor(ms: number): Promise<string> {
    const now = this.#o.clock.now();
    if (this.#lease && this.#lease.until >= now + ms) return this.#lease.id;
    const ttlSec = Math.max(MIN_LEASE_SEC, Math.ceil(ms / 1000) + 1);
    const g = await this.#o.client.leaseClient.leaseGrant({ TTL: ttlSec, ID: 0 }, this.#o.call());
    // Counted from before the request: etcd's timer started later, never earlier.
    this.#lease = { id: g.ID, until: now + Number(g.TTL) * 1000 };
    return g.ID;
  }
}

function bucketOf(kv: IKeyValue): Bucket | undefined {
  try {
    const v = JSON.parse(kv.value.toString()) as Partial<Bucket>;
    if (typeof v.tokens === 'number' && typeof v.at === 'number') return v as Bucket;
  } catch {
    // An unreadable bucket counts as full; the next write replaces it.
  }
  return undefined;
}
