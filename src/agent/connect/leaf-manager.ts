/**
 * The agent's certificates for its services (Consul's leaf cert cache, made durable):
 *
 *   - the key is made here and never leaves the host; the servers get a CSR
 *   - each leaf is renewed at a random point between 60% and 90% of its lifetime, with backoff
 *     on failure, and at once (spread over a moment) when the active root changes
 *   - leaves, their keys and the roots are kept on disk (0600), so an agent restarted while
 *     every server is down still serves what it had until it expires
 *   - readers can block until a newer leaf exists (Consul's blocking leaf query)
 *
 * The roots are watched with a blocking query; their last answer is served while servers are
 * unreachable.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CARoots, IssuedCert } from '../../api/index.js';
import type { TrellisClient } from '../../client/index.js';
import { jitter, MeshError, type Clock, type Random, makeDirs } from '../../core/index.js';
import { createCsr } from '../../pki/index.js';
import { serviceSpiffeId } from '../../policy/index.js';

export const AGENT_TOKEN_HEADER = 'x-trellis-agent-token';

interface ServerIssued extends Omit<IssuedCert, 'PrivateKeyPEM'> {
  RootID: string;
}

export interface LeafEntry {
  cert: IssuedCert;
  rootId: string;
  /** The token of the last request for it; renewals are made with it. */
  token: string;
}

export interface LeafManagerOptions {
  client: TrellisClient;
  node: string;
  datacenter: string;
  /** The agent's own token (proves to the servers which node asks). */
  agentToken: () => string | undefined;
  dataDir: string;
  clock: Clock;
  random: Random;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  onRoots?: (roots: CARoots) => void;
}

type Waiter = () => void;

const MAX_BACKOFF_MS = 60_000;

export class LeafManager {
  readonly #o: LeafManagerOptions;
  readonly #dir: string;
  readonly #leaves = new Map<string, LeafEntry>();
  readonly #timers = new Map<string, ReturnType<Clock['setTimeout']>>();
  readonly #failures = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<LeafEntry>>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  #roots: CARoots | undefined;
  #rootsIndex = 0;
  /** The servers' X-Consul-Index for the roots, to block on. */
  #rootsServerIndex = 0;
  #rootsWaiters = new Set<Waiter>();
  #index = 0;
  #stop = new AbortController();
  #watching: Promise<void> | undefined;

  constructor(opts: LeafManagerOptions) {
    this.#o = opts;
    this.#dir = join(opts.dataDir, 'connect');
    this.#load();
  }

  get roots(): CARoots | undefined {
    return this.#roots;
  }

  get rootsIndex(): number {
    return this.#rootsIndex;
  }

  /** Starts watching the roots; leaves loaded from disk get their renewal timers. */
  start(): void {
    for (const [service, e] of this.#leaves) this.#schedule(service, e);
    this.#watching = this.#watchRoots();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    for (const t of this.#timers.values()) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
    await this.#watching;
  }

  /**
   * The current leaf for `service`, issuing one when there is none, it is past its renewal
   * point... or signed by a root that is no longer active. With `minIndex`, waits (up to
   * `waitMs`) for a leaf newer than that.
   */
  async get(
    service: string,
    token: string,
    minIndex = 0,
    waitMs = 0,
    signal?: AbortSignal,
  ): Promise<IssuedCert> {
    let e = this.#leaves.get(service);
    if (e && minIndex > 0 && e.cert.ModifyIndex <= minIndex && waitMs > 0) {
      await this.#wait(service, waitMs, signal);
      e = this.#leaves.get(service);
    }
    if (e && e.token !== token) {
      e = { ...e, token };
      this.#leaves.set(service, e);
    }
    if (e && this.#fresh(e)) return e.cert;
    try {
      return (await this.#issue(service, token)).cert;
    } catch (err) {
      // Servers unreachable: a leaf that has not expired still serves.
      if (e && Date.parse(e.cert.ValidBefore) > this.#o.clock.now() && !isAuthError(err))
        return e.cert;
      throw err;
    }
  }

  /** Waits until the roots' index passes `minIndex` (or `waitMs`). */
  async waitRoots(minIndex: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#rootsIndex > minIndex) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.#o.clock.clearTimeout(timer);
        this.#rootsWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.#o.clock.setTimeout(done, waitMs);
      this.#rootsWaiters.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  /** Valid, before its renewal point... signed by the active root. */
  #fresh(e: LeafEntry): boolean {
    const now = this.#o.clock.now();
    const after = Date.parse(e.cert.ValidAfter);
    const before = Date.parse(e.cert.ValidBefore);
    if (now >= after + (before - after) * 0.9) return false;
    const active = this.#roots?.ActiveRootID;
    return !active || active === e.rootId;
  }

  #issue(service: string, token: string): Promise<LeafEntry> {
    const running = this.#inflight.get(service);
    if (running) return running;
    const p = this.#sign(service, token).finally(() => this.#inflight.delete(service));
    this.#inflight.set(service, p);
    return p;
  }

  async #sign(service: string, token: string): Promise<LeafEntry> {
    if (!this.#roots) await this.#fetchRoots();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const td = this.#roots!.TrustDomain;
    const csr = createCsr(privateKey, serviceSpiffeId(td, this.#o.datacenter, service));
    const agentToken = this.#o.agentToken();
    const r = await this.#o.client.request<ServerIssued>({
      method: 'PUT',
      path: '/v1/internal/trellis/connect/sign',
      body: { Service: service, Node: this.#o.node, CSR: csr },
      headers: {
        'x-consul-token': token || 'anonymous',
        ...(agentToken ? { [AGENT_TOKEN_HEADER]: agentToken } : {}),
      },
    });
    const s = r.body as ServerIssued;
    this.#index = Math.max(this.#index + 1, Math.floor(Date.parse(s.ValidAfter) / 1000));
    const cert: IssuedCert = {
      SerialNumber: s.SerialNumber,
      CertPEM: s.CertPEM,
      PrivateKeyPEM: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      Service: service,
      ServiceURI: s.ServiceURI,
      ValidAfter: s.ValidAfter,
      ValidBefore: s.ValidBefore,
      CreateIndex: this.#index,
      ModifyIndex: this.#index,
    };
    const entry: LeafEntry = { cert, rootId: s.RootID, token };
    this.#leaves.set(service, entry);
    this.#failures.delete(service);
    this.#save(service, entry);
    this.#schedule(service, entry);
    this.#wake(service);
    this.#o.log.info(
      { service, serial: s.SerialNumber, validBefore: s.ValidBefore },
      'leaf certificate issued',
    );
    return entry;
  }

  /** Renewal at a random point in [60%, 90%] of the lifetime, as Consul spreads it. */
  #schedule(service: string, e: LeafEntry): void {
    const after = Date.parse(e.cert.ValidAfter);
    const life = Date.parse(e.cert.ValidBefore) - after;
    const at = after + life * (0.6 + 0.3 * this.#o.random.next());
    this.#timer(service, Math.max(0, at - this.#o.clock.now()));
  }

  #timer(service: string, ms: number): void {
    const old = this.#timers.get(service);
    if (old) this.#o.clock.clearTimeout(old);
    if (this.#stop.signal.aborted) return;
    // Timers longer than 2^31-1 ms fire at once in Node; re-check instead.
    const delay = Math.min(ms, 2 ** 31 - 1);
    this.#timers.set(
      service,
      this.#o.clock.setTimeout(() => void this.#renew(service), delay),
    );
  }

  async #renew(service: string): Promise<void> {
    const e = this.#leaves.get(service);
    if (!e || this.#stop.signal.aborted) return;
    if (this.#fresh(e) && this.#o.clock.now() < this.#renewPoint(e))
      return this.#schedule(service, e);
    try {
      await this.#issue(service, e.token);
    } catch (err) {
      const n = (this.#failures.get(service) ?? 0) + 1;
      this.#failures.set(service, n);
      if (isAuthError(err)) {
        this.#o.log.warn(
          { service, err: String(err) },
          'leaf renewal refused: the token it was requested with no longer allows it; it will expire',
        );
        return;
      }
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(n - 1, 6));
      const next = delay / 2 + jitter(this.#o.random, delay / 2);
      this.#o.log.warn({ service, err: String(err), retryInMs: next }, 'leaf renewal failed');
      this.#timer(service, next);
    }
  }

  #renewPoint(e: LeafEntry): number {
    const after = Date.parse(e.cert.ValidAfter);
    return after + (Date.parse(e.cert.ValidBefore) - after) * 0.6;
  }

  async #fetchRoots(): Promise<void> {
    const r = await this.#o.client.connect.caRoots();
    this.#setRoots(r.value, r.index);
  }

  #setRoots(roots: CARoots, index: number): void {
    const changedActive = roots.ActiveRootID !== this.#roots?.ActiveRootID;
    const seen = index === this.#rootsServerIndex;
    this.#rootsServerIndex = index;
    if (seen && !changedActive) return;
    const hadRoots = this.#roots !== undefined;
    this.#roots = roots;
    this.#rootsIndex += 1;
    this.#saveRoots();
    this.#o.onRoots?.(roots);
    for (const w of [...this.#rootsWaiters]) w();
    if (changedActive && hadRoots) this.#reissueAll();
  }

  async #watchRoots(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const r = await this.#o.client.connect.caRoots({
          index: this.#rootsServerIndex,
          wait: '5m',
          signal,
        });
        failures = 0;
        this.#setRoots(r.value, r.index);
      } catch {
        if (signal.aborted) return;
        failures++;
        const delay = Math.min(30_000, 200 * 2 ** Math.min(failures, 8));
        await sleep(this.#o.clock, delay, signal);
      }
    }
  }

  /** A new active root: every leaf is re-issued within a couple of seconds, spread out. */
  #reissueAll(): void {
    for (const service of this.#leaves.keys()) {
      this.#timer(service, jitter(this.#o.random, 2000));
    }
  }

  async #wait(service: string, waitMs: number, signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      let set = this.#waiters.get(service);
      if (!set) this.#waiters.set(service, (set = new Set()));
      const done = (): void => {
        this.#o.clock.clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.#o.clock.setTimeout(done, waitMs);
      set.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  #wake(service: string): void {
    for (const w of [...(this.#waiters.get(service) ?? [])]) w();
  }

  // ---- disk ----------------------------------------------------------------------------------

  #save(service: string, e: LeafEntry): void {
    try {
      makeDirs(this.#dir, 0o700);
      const path = join(this.#dir, `leaf-${service}.json`);
      writeFileSync(`${path}.tmp`, JSON.stringify(e), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      this.#o.log.warn({ service, err: String(err) }, 'cannot save leaf certificate');
    }
  }

  #saveRoots(): void {
    try {
      makeDirs(this.#dir, 0o700);
      const path = join(this.#dir, 'roots.json');
      writeFileSync(`${path}.tmp`, JSON.stringify(this.#roots), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      this.#o.log.warn({ err: String(err) }, 'cannot save CA roots');
    }
  }

  #load(): void {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const text = readFileSync(join(this.#dir, name), 'utf8');
        if (name === 'roots.json') {
          this.#roots = JSON.parse(text) as CARoots;
          this.#rootsIndex = 0;
          continue;
        }
        const m = /^leaf-(.+)\.json$/.exec(name);
        if (!m) continue;
        const e = JSON.parse(text) as LeafEntry;
        this.#leaves.set(m[1]!, e);
        this.#index = Math.max(this.#index, e.cert.ModifyIndex);
      } catch (err) {
        this.#o.log.warn(
          { file: name, err: String(err) },
          'ignoring an unreadable cached certificate',
        );
      }
    }
  }
}

function isAuthError(err: unknown): boolean {
  return err instanceof MeshError && (err.status === 403 || err.status === 401);
}

function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.setTimeout(done, ms);
    function done(): void {
      clock.clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
