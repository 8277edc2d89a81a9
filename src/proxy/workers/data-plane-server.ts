/**
 * The data-plane supervisor's socket (`trellis proxy`): the process that owns the host's proxy
 * listeners and workers, so that the agent (the control plane) can restart or be upgraded while
 * every proxied connection stays open. The agent connects to a unix socket, takes over the
 * plans served (`welcome`), and from then on sends what it would send its own workers; the
 * supervisor applies each message in every worker and answers once.
 *
 * One agent at a time: a second connection is told `busy` and closed, so two agents never
 * steer the same proxies. When the agent goes away the proxies keep serving their last plans.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameReader, frame } from './frames.js';
import { DATA_PLANE_PROTOCOL, type FromDataPlane, type ToDataPlane } from './protocol.js';
import { planFailure, type ProxyWorkers } from './proxy-workers.js';

export interface DataPlaneServerOptions {
  socketPath: string;
  workers: ProxyWorkers;
  /** Trellis's version, told to the agent. */
  version: string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class DataPlaneInUse extends Error {}

/** Whether something accepts connections on the unix socket at `path`. */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class DataPlaneServer {
  readonly #o: DataPlaneServerOptions;
  readonly #server: Server;
  #agent: Socket | undefined;
  #idle: (() => void)[] = [];

  constructor(opts: DataPlaneServerOptions) {
    this.#o = opts;
    this.#server = createServer((s) => this.#accept(s));
  }

  /** Listens on the socket (mode 0600); a stale socket file is replaced, a live one refused. */
  async listen(): Promise<void> {
    const path = this.#o.socketPath;
    if (existsSync(path)) {
      if (await answering(path))
        throw new DataPlaneInUse(`another trellis proxy already serves ${path}`);
      unlinkSync(path);
    }
    // Only the agent's user may connect: the socket carries the proxies' private keys.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(path, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
  }

  get agentConnected(): boolean {
    return this.#agent !== undefined;
  }

  /** Resolves once no agent is connected. */
  agentGone(): Promise<void> {
    if (!this.#agent) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Asks the connected agent to drain the host and exit; false when none is connected. */
  requestDrain(): boolean {
    if (!this.#agent) return false;
    this.#send({ t: 'drainRequested' });
    return true;
  }

  async close(): Promise<void> {
    this.#agent?.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #send(m: FromDataPlane): void {
    if (this.#agent && !this.#agent.destroyed) this.#agent.write(frame(m));
  }

  #accept(s: Socket): void {
    // A peer that resets (a probe, an agent killed) must not take the data plane down.
    s.on('error', () => undefined);
    if (this.#agent) {
      s.end(frame({ t: 'busy', message: 'another agent is connected to this data plane' }));
      // Read to the peer's end, or the socket never closes (and neither would close()).
      s.resume();
      return;
    }
    this.#agent = s;
    this.#o.log.info({}, 'agent connected');
    const reader = new FrameReader();
    s.on('data', (chunk: Buffer) => {
      let msgs: unknown[];
      try {
        msgs = reader.push(chunk);
      } catch (err) {
        this.#o.log.warn({ err: String(err) }, 'unreadable message from the agent; disconnecting');
        s.destroy();
        return;
      }
      for (const m of msgs) {
        // A peer refused or replaced meanwhile steers nothing.
        if (this.#agent !== s) return;
        this.#handle(m as ToDataPlane, s).catch((err: unknown) =>
          this.#o.log.warn({ err: String(err) }, 'data plane message failed'),
        );
      }
    });
    s.once('close', () => {
      if (this.#agent !== s) return;
      this.#agent = undefined;
      this.#o.log.info({}, 'agent disconnected; the proxies keep serving their plans');
      for (const f of this.#idle.splice(0)) f();
    });
  }

  /** Answers go to the connection that asked, never to an agent that connected since. */
  async #handle(m: ToDataPlane, s: Socket): Promise<void> {
    const reply = (r: FromDataPlane): void => {
      if (!s.destroyed) s.write(frame(r));
    };
    const workers = this.#o.workers;
    switch (m.t) {
      case 'hello':
        if (m.protocol !== DATA_PLANE_PROTOCOL) {
          const message = `the agent (${m.version}) speaks data-plane protocol ${String(m.protocol)}, this trellis proxy (${this.#o.version}) ${DATA_PLANE_PROTOCOL}: restart trellis proxy to run the same release (it drops proxied connections)`;
          this.#o.log.warn({ agentVersion: m.version }, message);
          reply({ t: 'refused', message });
          // Not an agent of this data plane: the slot is free for one that is.
          if (this.#agent === s) this.#agent = undefined;
          s.end();
          for (const f of this.#idle.splice(0)) f();
          return;
        }
        this.#o.log.info({ agentVersion: m.version }, 'agent says hello');
        reply({
          t: 'welcome',
          pid: process.pid,
          version: this.#o.version,
          served: workers.served(),
        });
        return;
      case 'plan': {
        const h = this.#proxy(m.id);
        try {
          await h.setPlan(m.plan);
          reply({ t: 'done', seq: m.seq, served: h.plan ?? null });
        } catch (err) {
          reply({ t: 'done', seq: m.seq, served: h.plan ?? null, error: planFailure(err) });
        }
        return;
      }
      case 'stop':
        await this.#proxy(m.id).stop();
        reply({ t: 'done', seq: m.seq, served: null });
        return;
      case 'drain': {
        const cut = await this.#proxy(m.id).drain(m.timeoutMs);
        reply({ t: 'drained', seq: m.seq, cut });
        return;
      }
      case 'metrics':
        reply({ t: 'metrics', seq: m.seq, json: await workers.metrics() });
        return;
    }
  }

  /** The workers' handle of sidecar `id`, reporting an unreachable app to the agent. */
  #proxy(id: string): ReturnType<ProxyWorkers['handle']> {
    const h = this.#o.workers.handle(id);
    h.onLocalAppUnreachable(() => this.#send({ t: 'appDown', id }));
    return h;
  }
}
