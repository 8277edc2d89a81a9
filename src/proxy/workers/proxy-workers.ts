/**
 * The agent's proxy workers (`proxy_workers`): processes that carry the host's sidecar traffic
 * so it can use every core. The agent stays the one control loop: it builds each plan once and
 * sends it to every worker; setPlan resolves only when all of them apply it, so a plan the agent
 * reports as in force is in force in every worker. Listening sockets are shared through
 * node:cluster with each worker accepting on its own (SCHED_NONE: no hop through the agent).
 *
 * A worker that dies is forked again and given the plans the others serve; the others' open
 * connections are not touched. Metrics are merged across workers where the agent exposes them.
 * Workers are forked when the first plan arrives, so an agent without sidecars has none.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Clock } from '../../core/index.js';
import { ListenError } from '../listen.js';
import type { ProxyPlan } from '../plan.js';
import type { FromWorker, MetricsJson, PlanFailure, ToWorker } from './protocol.js';

/** What the agent's sidecar runner needs of a proxy (ServiceProxy in-process, or the workers). */
export interface ProxyHandle {
  readonly plan: ProxyPlan | undefined;
  setPlan(plan: ProxyPlan): Promise<void>;
  stop(): Promise<void>;
  /**
   * Stops accepting, lets open exchanges finish for at most `timeoutMs`, then stops; resolves
   * with how many connections were still open at the limit (and cut).
   */
  drain(timeoutMs: number): Promise<number>;
  onLocalAppUnreachable(fn: () => void): void;
}

export interface ProxyWorkersOptions {
  count: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** The workers' log level (their proxy and access logs). */
  logLevel: string;
  clock: Clock;
}

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** A worker that dies sooner than this after starting is restarted after a pause. */
const CRASH_LOOP_MS = 5_000;

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  startedAt: number;
}

export type Reply = Extract<FromWorker, { t: 'done' | 'drained' }> | { t: 'died' };

/** Who carries the proxies a WorkerProxy stands for: the agent's workers, or `trellis proxy`. */
export interface ProxyCarrier {
  /** Sends `m` (given a fresh sequence number) to every process; one reply each. */
  broadcast(make: (seq: number) => ToWorker): Promise<Reply[]>;
  forget(id: string): void;
}

export class ProxyWorkers implements ProxyCarrier {
  readonly #slots: (Slot | undefined)[];
  readonly #handles = new Map<string, WorkerProxy>();
  readonly #waiting = new Map<
    number,
    { worker: Worker; resolve: (r: FromWorker | { t: 'died' }) => void }
  >();
  #seq = 0;
  #closing = false;
  #started = false;

  constructor(readonly opts: ProxyWorkersOptions) {
    this.#slots = new Array<Slot | undefined>(Math.max(1, opts.count)).fill(undefined);
  }

  get count(): number {
    return this.#slots.length;
  }

  /** The running workers' process ids (none before the first plan). */
  pids(): number[] {
    return this.#slots.flatMap((s) => (s?.worker.process.pid ? [s.worker.process.pid] : []));
  }

  /** The proxy of sidecar `id`, carried by every worker. */
  handle(id: string): ProxyHandle {
    let h = this.#handles.get(id);
    if (!h) this.#handles.set(id, (h = new WorkerProxy(this, id)));
    return h;
  }

  forget(id: string): void {
    this.#handles.delete(id);
  }

  /** Every sidecar proxy the workers carry, with the plan it serves. */
  served(): { id: string; plan: ProxyPlan }[] {
    return [...this.#handles.values()].flatMap((h) => (h.plan ? [{ id: h.id, plan: h.plan }] : []));
  }

  /**
   * Replaces every worker with a new process, which runs the code on disk now (after a package
   * upgrade), dropping nothing: the new workers serve every plan on the same listening sockets
   * before the old ones stop accepting and drain (open exchanges finish within `drainTimeoutMs`).
   */
  async renew(drainTimeoutMs: number): Promise<void> {
    if (!this.#started || this.#closing) return;
    const old = this.#slots.filter((s): s is Slot => s !== undefined);
    for (let i = 0; i < this.#slots.length; i++) this.#fork(i);
    await Promise.all(this.#slots.map((s) => (s ? this.#replay(s) : undefined)));
    const ids = [...this.#handles.keys()];
    await Promise.all(
      old.map(async (s) => {
        await Promise.all(
          ids.map((id) =>
            this.#ask(s.worker, { t: 'drain', seq: ++this.#seq, id, timeoutMs: drainTimeoutMs }),
          ),
        );
        await stopWorker(s.worker);
      }),
    );
  }

  /** Sends `m` (given a fresh sequence number) to every worker; one reply per worker. */
  async broadcast(make: (seq: number) => ToWorker): Promise<Reply[]> {
    this.#start();
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    return Promise.all(
      slots.map(async (s) => {
        await s.ready;
        return this.#ask(s.worker, make(++this.#seq)) as Promise<Reply>;
      }),
    );
  }

  #ask(worker: Worker, m: ToWorker): Promise<FromWorker | { t: 'died' }> {
    return new Promise((resolve) => {
      if (!worker.isConnected()) return resolve({ t: 'died' });
      this.#waiting.set(m.seq, { worker, resolve });
      worker.send(m);
    });
  }

  /** Every worker's metrics, for the agent to merge with its own. */
  async metrics(): Promise<MetricsJson[]> {
    if (!this.#started) return [];
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    const replies = await Promise.all(
      slots.map(async (s) => {
        await s.ready;
        return this.#ask(s.worker, { t: 'metrics', seq: ++this.#seq });
      }),
    );
    return replies.flatMap((r) => (r.t === 'metrics' ? [r.json] : []));
  }

  #start(): void {
    if (this.#started || this.#closing) return;
    this.#started = true;
    // Each worker accepts on the shared socket itself; the default (round robin) would pass
    // every connection through the agent's event loop first.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: WORKER_MAIN,
      args: [this.opts.logLevel],
      serialization: 'advanced',
    });
    for (let i = 0; i < this.#slots.length; i++) this.#fork(i);
  }

  #fork(i: number): void {
    const worker = cluster.fork();
    let ready!: () => void;
    const slot: Slot = {
      worker,
      ready: new Promise((r) => (ready = r)),
      startedAt: this.opts.clock.now(),
    };
    this.#slots[i] = slot;
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'ready') return ready();
      if (m.t === 'appDown') return this.#handles.get(m.id)?.appDown();
      const w = this.#waiting.get(m.seq);
      if (!w) return;
      this.#waiting.delete(m.seq);
      w.resolve(m);
    });
    worker.on('error', () => undefined);
    worker.once('exit', (code, signal) => {
      for (const [seq, w] of this.#waiting)
        if (w.worker === worker) {
          this.#waiting.delete(seq);
          w.resolve({ t: 'died' });
        }
      ready();
      if (this.#closing || this.#slots[i] !== slot) return;
      this.#slots[i] = undefined;
      this.opts.log.warn(
        { worker: worker.process.pid, code, signal },
        'proxy worker exited; starting another',
      );
      const wait = this.opts.clock.now() - slot.startedAt < CRASH_LOOP_MS ? CRASH_LOOP_MS : 0;
      this.opts.clock.setTimeout(() => {
        if (this.#closing) return;
        this.#fork(i);
        void this.#replay(this.#slots[i]!);
      }, wait);
    });
  }

  /** A new worker gets the plans the other workers serve. */
  async #replay(slot: Slot): Promise<void> {
    await slot.ready;
    for (const h of this.#handles.values()) {
      const plan = h.plan;
      if (plan) await this.#ask(slot.worker, { t: 'plan', seq: ++this.#seq, id: h.id, plan });
    }
  }

  /** Stops every worker (their proxies' connections end with them). */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#slots.map((s) => (s ? stopWorker(s.worker) : undefined)));
  }
}

/** SIGTERM, then SIGKILL if it has not exited 5 s later. */
function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    if (worker.isDead()) return resolve();
    worker.once('exit', () => resolve());
    worker.kill('SIGTERM');
    setTimeout(() => worker.process.kill('SIGKILL'), 5_000).unref();
  });
}

/** Merges the agent's own metrics with its workers' (counters and histograms summed). */
export async function mergedMetrics(
  own: MetricsJson,
  workers: { metrics(): Promise<MetricsJson[]> } | undefined,
): Promise<Registry> {
  const all = workers ? [own, ...(await workers.metrics())] : [own];
  return AggregatorRegistry.aggregate(all);
}

/** An error from applying a plan, as a message can carry it. */
export function planFailure(err: unknown): PlanFailure {
  if (err instanceof ListenError)
    return {
      message: err.message,
      listen: { address: err.address, port: err.port, code: err.code, detail: err.detail },
    };
  return { message: err instanceof Error ? err.message : String(err) };
}

function planError(f: PlanFailure): Error {
  if (f.listen)
    return new ListenError(f.listen.address, f.listen.port, f.listen.code, f.listen.detail);
  return new Error(f.message);
}

/** One sidecar's proxy as other processes carry it (the workers, or `trellis proxy`). */
export class WorkerProxy implements ProxyHandle {
  #plan: ProxyPlan | undefined;
  #appDown: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** `serving`: the plan the carrier already serves for it (taken over after a restart). */
  constructor(
    readonly workers: ProxyCarrier,
    readonly id: string,
    serving?: ProxyPlan,
  ) {
    this.#plan = serving;
  }

  get plan(): ProxyPlan | undefined {
    return this.#plan;
  }

  onLocalAppUnreachable(fn: () => void): void {
    this.#appDown = fn;
  }

  appDown(): void {
    this.#appDown?.();
  }

  /** Applied in every worker before it resolves; a failure in any rejects with its error. */
  setPlan(plan: ProxyPlan): Promise<void> {
    const run = this.#queue.then(async () => {
      const replies = await this.workers.broadcast((seq) => ({
        t: 'plan',
        seq,
        id: this.id,
        plan,
      }));
      let failure: PlanFailure | undefined;
      // A process that died before answering gets this plan when it is replaced (or reconnects).
      if (!replies.some((r) => r.t === 'done')) this.#plan = plan;
      for (const r of replies) {
        if (r.t !== 'done') continue;
        this.#plan = r.served ?? undefined;
        failure ??= r.error;
      }
      if (failure) throw planError(failure);
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async stop(): Promise<void> {
    await this.#queue;
    this.workers.forget(this.id);
    await this.workers.broadcast((seq) => ({ t: 'stop', seq, id: this.id }));
    this.#plan = undefined;
  }

  async drain(timeoutMs: number): Promise<number> {
    await this.#queue;
    this.workers.forget(this.id);
    const replies = await this.workers.broadcast((seq) => ({
      t: 'drain',
      seq,
      id: this.id,
      timeoutMs,
    }));
    this.#plan = undefined;
    let cut = 0;
    for (const r of replies) if (r.t === 'drained') cut += r.cut;
    return cut;
  }
}
