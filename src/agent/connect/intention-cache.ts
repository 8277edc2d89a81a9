/**
 * The agent's copy of every intention and of the cluster's default decision, kept current by a
 * blocking query on the servers, so authorizing a connection is a lookup in memory
 * (`/v1/agent/connect/authorize`, and the proxies through `decide`) with no server round trip.
 *
 *   GET /v1/internal/trellis/connect/intention-state?index=N&wait=5m
 *       -> {DefaultAllow, Index, Intentions}   (the watch loop of client/watch.ts)
 *
 * Fail static: while the servers cannot be reached the last state keeps answering, as Consul's
 * agent cache does. Fail closed: before the first answer, or when the servers refuse the
 * agent's token (it must be able to read every intention: a partial set could let a wildcard
 * allow hide a deny), every request is denied and says why.
 */
import type { Intention } from '../../api/index.js';
import { blockingTimeoutMs, type TrellisClient } from '../../client/index.js';
import { describeError, MeshError, type Clock } from '../../core/index.js';
import {
  decide,
  parseSpiffeId,
  IntentionIndex,
  type Decision,
  type IntentionRule,
  type Request,
} from '../../policy/index.js';

export const INTENTION_STATE_PATH = '/v1/internal/trellis/connect/intention-state';

/** The server's answer (see catalog/http/intention-routes.ts). */
export interface IntentionStateWire {
  DefaultAllow: boolean;
  Index: number;
  Intentions: Intention[];
}

/** What the cache holds, as listeners see it. */
export interface IntentionSnapshot {
  index: number;
  defaultAllow: boolean;
  /** In evaluation order. */
  intentions: readonly Intention[];
}

export type IntentionListener = (snapshot: IntentionSnapshot) => void;

/** The answer of /v1/agent/connect/authorize. */
export interface AuthorizeResult {
  Authorized: boolean;
  Reason: string;
}

export interface IntentionCacheLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface IntentionCacheOptions {
  client: TrellisClient;
  clock: Clock;
  log: IntentionCacheLogger;
  /** How long each blocking query may wait on the server; default 5 minutes. */
  waitMs?: number;
  /** Longest pause between retries while the servers cannot be reached; default 5s. */
  maxBackoffMs?: number;
}

export class IntentionCache {
  readonly #opts: IntentionCacheOptions;
  /** Rules by "destination\nsource": a request has at most four candidates (see decide). */
  #byPair = new IntentionIndex<IntentionRule>([]);
  #intentions: readonly Intention[] = [];
  #defaultAllow = false;
  #index = 0;
  #loaded = false;
  /** Why the servers refused the agent's token; set until a read succeeds again. */
  #refused: string | undefined;
  #failing = false;
  readonly #listeners = new Set<IntentionListener>();
  #readyWaiters: (() => void)[] = [];
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: IntentionCacheOptions) {
    this.#opts = opts;
  }

  /** True once intentions were loaded and the servers have not refused the agent since. */
  get ready(): boolean {
    return this.#loaded && this.#refused === undefined;
  }

  /** The servers' X-Consul-Index of the state held (0 before the first answer). */
  get index(): number {
    return this.#index;
  }

  get defaultAllow(): boolean {
    return this.#defaultAllow;
  }

  get intentions(): readonly Intention[] {
    return this.#intentions;
  }

  /** Starts following the servers; safe to call again. */
  start(): void {
    if (this.#loop) return;
    const ac = new AbortController();
    this.#abort = ac;
    const { client, log } = this.#opts;
    this.#loop = client
      .watch(
        async (index, signal) => {
          const r = await this.#fetch(index, signal);
          if (this.#failing) {
            this.#failing = false;
            log.info({ index: r.index }, 'intentions reachable again');
          }
          // After a refusal the index may be unchanged, and watch() would not call onChange.
          if (this.#refused !== undefined) this.update(r.value, r.index);
          return r;
        },
        (value, index) => {
          // Already installed by the fetch above (after a refusal).
          if (!this.#loaded || index !== this.#index) this.update(value, index);
        },
        {
          signal: ac.signal,
          maxBackoffMs: this.#opts.maxBackoffMs ?? 5_000,
          onError: (err, delayMs) => this.#onError(err, delayMs),
        },
      )
      .catch((err: unknown) => {
        log.error({ err: describeError(err) }, 'intention cache stopped');
      });
  }

  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
    for (const w of this.#readyWaiters.splice(0)) w();
  }

  /** Installs a state from the servers (the watch loop calls it; tests may too). */
  update(state: IntentionStateWire, index = state.Index): void {
    this.#byPair = new IntentionIndex(state.Intentions.map(toRule));
    this.#intentions = [...state.Intentions];
    this.#defaultAllow = state.DefaultAllow;
    this.#index = index;
    const recovered = this.#refused !== undefined;
    this.#refused = undefined;
    this.#loaded = true;
    if (recovered) this.#opts.log.info({ index }, 'intentions readable again');
    for (const w of this.#readyWaiters.splice(0)) w();
    const snapshot: IntentionSnapshot = {
      index,
      defaultAllow: this.#defaultAllow,
      intentions: this.#intentions,
    };
    for (const fn of [...this.#listeners]) {
      try {
        fn(snapshot);
      } catch (err) {
        this.#opts.log.error({ err: describeError(err) }, 'intention change listener failed');
      }
    }
  }

  /** Calls `fn` after every change of the intentions; returns the unsubscribe function. */
  onChange(fn: IntentionListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Resolves true once ready, or false after `ms` (or when stopped). */
  whenReady(ms: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        this.#opts.clock.clearTimeout(timer);
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== done);
        resolve(this.ready);
      };
      const timer = this.#opts.clock.setTimeout(done, ms);
      this.#readyWaiters.push(done);
    });
  }

  /**
   * The policy decision for a connection (no `http`) or an HTTP request, from the cached
   * intentions. Denies, saying why, while the cache has nothing it may trust.
   */
  decide(req: Request): Decision {
    if (this.#refused !== undefined)
      return { allowed: false, reason: `intentions unavailable: ${this.#refused}` };
    if (!this.#loaded)
      return { allowed: false, reason: 'intentions not loaded from the servers yet' };
    return decide(this.#candidates(req.source, req.destination), req, this.#defaultAllow);
  }

  /**
   * The rules whose names match, in evaluation order: one pair has one intention, so at most
   * exact => exact, * => exact, exact => *, * => *. decide() over these answers as it would
   * over every rule, in constant time however many intentions there are.
   */
  #candidates(source: string, destination: string): IntentionRule[] {
    return this.#byPair.candidates(source, destination);
  }

  /**
   * Whether the workload in a client certificate may connect to `target` (an L4 decision),
   * with Consul's reasons. The caller has verified the certificate chain.
   */
  authorize(target: string, clientCertURI: string): AuthorizeResult {
    const id = parseSpiffeId(clientCertURI);
    if (id?.kind !== 'service')
      return {
        Authorized: false,
        Reason: `ClientCertURI is not a valid service identity: ${JSON.stringify(clientCertURI.slice(0, 256))}`,
      };
    if (id.namespace !== 'default')
      return {
        Authorized: false,
        Reason: `ClientCertURI names namespace "${id.namespace}"; only "default" exists`,
      };
    const d = this.decide({ source: id.service, destination: target });
    const ixn = d.intention;
    if (!ixn) {
      if (!this.ready) return { Authorized: false, Reason: d.reason };
      return { Authorized: d.allowed, Reason: 'Default behavior configured by ACLs' };
    }
    const pair = `${ixn.SourceName} => ${ixn.DestinationName}`;
    if (ixn.Action)
      return { Authorized: d.allowed, Reason: `Matched L4 intention: ${pair} (${ixn.Action})` };
    const n = ixn.Permissions?.length ?? 0;
    return {
      Authorized: false,
      Reason: `Matched L7 intention: ${pair} (${n} permission${n === 1 ? '' : 's'}); L7 permissions deny plain connections`,
    };
  }

  async #fetch(
    index: number,
    signal: AbortSignal,
  ): Promise<{ value: IntentionStateWire; index: number }> {
    const waitMs = this.#opts.waitMs ?? 5 * 60_000;
    const blocking = index > 0;
    const res = await this.#opts.client.request<IntentionStateWire>({
      method: 'GET',
      path: INTENTION_STATE_PATH,
      query: blocking ? { index, wait: `${Math.max(1, Math.round(waitMs / 1000))}s` } : {},
      signal,
      ...(blocking ? { timeoutMs: blockingTimeoutMs(waitMs) } : {}),
    });
    const body = res.body;
    if (!res.json || !isState(body))
      throw new MeshError(
        'MESH_ERR_BAD_RESPONSE',
        'peer',
        'the servers answered the intention state request with something else',
      );
    return { value: body, index: res.index ?? body.Index };
  }

  #onError(err: unknown, delayMs: number): void {
    const log = this.#opts.log;
    if (err instanceof MeshError && err.status === 403) {
      // The token may not read every intention: what is held can no longer be trusted.
      if (this.#refused === undefined)
        log.error(
          { err: err.message },
          'the servers refused the intention state to this agent; denying every connection until they allow it (the agent token needs intention read on every service)',
        );
      this.#refused = err.message;
      return;
    }
    if (!this.#failing)
      log.warn(
        { err: describeError(err), retryInMs: delayMs },
        'cannot refresh intentions; keeping the last state',
      );
    this.#failing = true;
  }
}

function isState(v: unknown): v is IntentionStateWire {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.DefaultAllow === 'boolean' && Array.isArray(o.Intentions);
}

function toRule(i: Intention): IntentionRule {
  return {
    ID: i.ID || `${i.SourceName} => ${i.DestinationName}`,
    SourceName: i.SourceName,
    DestinationName: i.DestinationName,
    ...(i.Action ? { Action: i.Action } : {}),
    ...(i.Permissions?.length ? { Permissions: i.Permissions } : {}),
  };
}
