/**
 * The agent's end of the data-plane supervisor's socket (see data-plane-server.ts): the agent
 * steers proxies that `trellis proxy` carries, through the same handles it uses for its own
 * workers. At connect the agent learns the plans already served and takes them over, so a
 * restarted agent changes nothing until it has a newer plan. If the supervisor goes away
 * (restarted, crashed) the client reconnects and sends every plan again.
 */
import { connect, type Socket } from 'node:net';
import type { Clock } from '../../core/index.js';
import type { ProxyPlan } from '../plan.js';
import { FrameReader, frame } from './frames.js';
import {
  DATA_PLANE_PROTOCOL,
  type FromDataPlane,
  type MetricsJson,
  type ToDataPlane,
  type ToWorker,
} from './protocol.js';
import { WorkerProxy, type ProxyCarrier, type ProxyHandle, type Reply } from './proxy-workers.js';

export interface DataPlaneClientOptions {
  socketPath: string;
  /** Trellis's version, told to the supervisor. */
  version: string;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** How long connect() waits for the supervisor (default 30 s). */
  connectTimeoutMs?: number;
}

export class DataPlaneUnavailable extends Error {}

const RETRY_MS = 200;
/** How long an agent waits while another one holds the data plane. */
const BUSY_WAIT_MS = 5_000;

type Answer = Extract<FromDataPlane, { t: 'done' | 'drained' | 'metrics' }> | { t: 'died' };

export class DataPlaneClient implements ProxyCarrier {
  readonly #o: DataPlaneClientOptions;
  readonly #handles = new Map<string, WorkerProxy>();
  readonly #waiting = new Map<number, (a: Answer) => void>();
  /** Plans the supervisor served when this agent connected, not yet taken over. */
  #served = new Map<string, ProxyPlan>();
  #sock: Socket | undefined;
  #seq = 0;
  #closed = false;
  #onDrain: () => void = () => undefined;
  /** The last attempt was answered `busy`. */
  #busy = false;
  /** Why the supervisor refused this agent for good (another protocol). */
  #refused: string | undefined;
  /** Set while the connection is down; sends wait for it. */
  #up: Promise<void> = Promise.resolve();

  constructor(opts: DataPlaneClientOptions) {
    this.#o = opts;
  }

  /** The supervisor's process id, from its welcome. */
  pid = 0;

  /** Connects and takes the served plans; rejects if no supervisor answers in time. */
  async connect(): Promise<void> {
    const started = this.#o.clock.now();
    let last = '';
    for (;;) {
      const r = await this.#attempt();
      if (r === undefined) return;
      if (last !== r)
        this.#o.log.warn({ socket: this.#o.socketPath, why: r }, 'waiting for the data plane');
      last = r;
      // Another agent holding it may be a restart's predecessor closing: wait a little only.
      const limit = this.#busy ? BUSY_WAIT_MS : (this.#o.connectTimeoutMs ?? 30_000);
      if (this.#o.clock.now() - started >= limit || this.#closed || this.#refused)
        throw new DataPlaneUnavailable(
          `no data plane (trellis proxy) answers at ${this.#o.socketPath}: ${r}`,
        );
      await new Promise<void>((res) => this.#o.clock.setTimeout(res, RETRY_MS));
    }
  }

  /** One connection attempt: undefined once welcomed, else why not. */
  #attempt(): Promise<string | undefined> {
    return new Promise((resolve) => {
      const s = connect(this.#o.socketPath);
      const reader = new FrameReader();
      let welcomed = false;
      this.#busy = false;
      s.once('error', (e: NodeJS.ErrnoException) => {
        if (!welcomed) resolve(e.code ?? e.message);
      });
      s.once('connect', () =>
        s.write(frame({ t: 'hello', version: this.#o.version, protocol: DATA_PLANE_PROTOCOL })),
      );
      s.on('data', (chunk: Buffer) => {
        let msgs: unknown[];
        try {
          msgs = reader.push(chunk);
        } catch (err) {
          s.destroy();
          if (!welcomed) resolve(String(err));
          return;
        }
        for (const raw of msgs) {
          const m = raw as FromDataPlane;
          if (welcomed) this.#receive(m);
          else if (m.t === 'refused') {
            this.#refused = m.message;
            s.destroy();
            resolve(m.message);
          } else if (m.t === 'busy') {
            this.#busy = true;
            s.destroy();
            resolve(m.message);
          } else if (m.t === 'welcome') {
            welcomed = true;
            this.#sock = s;
            this.pid = m.pid;
            this.#served = new Map(m.served.map((x) => [x.id, x.plan]));
            this.#o.log.info(
              { pid: m.pid, version: m.version, proxies: m.served.length },
              'connected to the data plane',
            );
            s.once('close', () => this.#lost(s));
            resolve(undefined);
          }
        }
      });
      s.once('close', () => {
        if (!welcomed) resolve('closed before answering');
      });
    });
  }

  #receive(m: FromDataPlane): void {
    switch (m.t) {
      case 'appDown':
        this.#handles.get(m.id)?.appDown();
        return;
      case 'drainRequested':
        this.#onDrain();
        return;
      case 'done':
      case 'drained':
      case 'metrics': {
        const w = this.#waiting.get(m.seq);
        this.#waiting.delete(m.seq);
        w?.(m);
        return;
      }
      default:
        return;
    }
  }

  /** The connection dropped: pending asks fail, and the client reconnects and replays. */
  #lost(s: Socket): void {
    if (this.#sock !== s) return;
    this.#sock = undefined;
    for (const [seq, w] of this.#waiting) {
      this.#waiting.delete(seq);
      w({ t: 'died' });
    }
    if (this.#closed) return;
    this.#o.log.warn({ socket: this.#o.socketPath }, 'lost the data plane; reconnecting');
    let ready!: () => void;
    this.#up = new Promise((r) => (ready = r));
    void (async () => {
      while (!this.#closed && !this.#refused) {
        if ((await this.#attempt()) === undefined) break;
        await new Promise<void>((res) => this.#o.clock.setTimeout(res, 1000));
      }
      ready();
      // A new supervisor has no listeners: every plan again (one it still serves is a no-op).
      for (const h of this.#handles.values()) {
        const plan = h.plan;
        if (plan && !this.#closed) await this.#ask({ t: 'plan', seq: ++this.#seq, id: h.id, plan });
      }
    })();
  }

  #ask(m: ToDataPlane & { seq: number }): Promise<Answer> {
    return new Promise((resolve) => {
      const s = this.#sock;
      if (!s || s.destroyed) return resolve({ t: 'died' });
      this.#waiting.set(m.seq, resolve);
      s.write(frame(m));
    });
  }

  async broadcast(make: (seq: number) => ToWorker): Promise<Reply[]> {
    await this.#up;
    const m = make(++this.#seq);
    const a = await this.#ask(m.t === 'metrics' ? { t: 'metrics', seq: m.seq } : m);
    return a.t === 'metrics' ? [] : [a];
  }

  /** The proxy of sidecar `id`; serving what the supervisor served for it at connect. */
  handle(id: string): ProxyHandle {
    let h = this.#handles.get(id);
    if (!h) {
      h = new WorkerProxy(this, id, this.#served.get(id));
      this.#served.delete(id);
      this.#handles.set(id, h);
    }
    return h;
  }

  forget(id: string): void {
    this.#handles.delete(id);
  }

  /** Proxies the supervisor served at connect that no sidecar of this agent has taken over. */
  untaken(): string[] {
    return [...this.#served.keys()];
  }

  /** Stops one of the proxies nobody took over. */
  async stopUntaken(id: string): Promise<void> {
    await this.handle(id).stop();
  }

  /** The workers' metrics, for the agent to merge with its own. */
  async metrics(): Promise<MetricsJson[]> {
    await this.#up;
    const a = await this.#ask({ t: 'metrics', seq: ++this.#seq });
    return a.t === 'metrics' ? a.json : [];
  }

  /** Called when the supervisor is being stopped and wants the agent to drain the host. */
  onDrainRequested(fn: () => void): void {
    this.#onDrain = fn;
  }

  /** Disconnects; the proxies keep serving in the supervisor. */
  close(): void {
    this.#closed = true;
    this.#sock?.end();
  }
}
