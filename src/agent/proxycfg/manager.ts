/**
 * One agent carries every proxy of its host: for each local `connect-proxy` service it runs a
 * ProxyRunner, and keeps that set equal to the local services (reconcile() after every local
 * change). A changed sidecar definition replaces its runner, which takes over the old one's
 * proxy (make before break); the others are untouched.
 */
import type { AgentService, TransparentProxyConfig } from '../../api/index.js';
import type { TransparentSettings } from '../capture/types.js';
import type { SidecarSpec } from './build-plan.js';
import { ProxyRunner, type RunnerDeps } from './proxy-runner.js';

export interface LocalSidecar {
  service: AgentService;
  token?: string;
}

/** The spec of a local connect-proxy service, or undefined when it is not one we can run. */
export function sidecarSpec(s: LocalSidecar, datacenter: string): SidecarSpec | undefined {
  const svc = s.service;
  const p = svc.Proxy;
  if (svc.Kind !== 'connect-proxy' || !p?.DestinationServiceName || !svc.Port) return undefined;
  return {
    id: svc.ID,
    destination: p.DestinationServiceName,
    datacenter,
    // The public listener: the sidecar's registered address, or every interface.
    bindAddress: svc.Address || '0.0.0.0',
    bindPort: svc.Port,
    localApp: {
      address: p.LocalServiceAddress || '127.0.0.1',
      port: p.LocalServicePort ?? 0,
    },
    upstreams: (p.Upstreams ?? [])
      .filter((u) => (u.DestinationType ?? 'service') === 'service')
      .map((u) => ({
        destination: u.DestinationName,
        bindAddress: u.LocalBindAddress || '127.0.0.1',
        bindPort: u.LocalBindPort ?? 0,
        ...(u.Datacenter ? { datacenter: u.Datacenter } : {}),
      })),
    ...(s.token ? { token: s.token } : {}),
    ...(p.Mode === 'transparent' ? { transparent: transparentSettings(p.TransparentProxy) } : {}),
  };
}

function transparentSettings(tp: TransparentProxyConfig | undefined): TransparentSettings {
  return {
    ...(tp?.CaptureUser ? { captureUser: tp.CaptureUser } : {}),
    ...(tp?.CaptureCgroup ? { captureCgroup: tp.CaptureCgroup } : {}),
    excludeInboundPorts: tp?.ExcludeInboundPorts ?? [],
    excludeOutboundPorts: tp?.ExcludeOutboundPorts ?? [],
    excludeOutboundCidrs: tp?.ExcludeOutboundCIDRs ?? [],
    excludeUids: tp?.ExcludeUIDs ?? [],
    redirectDns: tp?.RedirectDNS ?? false,
  };
}

export class ProxyManager {
  readonly #deps: RunnerDeps;
  readonly #datacenter: string;
  readonly #runners = new Map<string, { runner: ProxyRunner; key: string }>();
  #stopped = false;
  #queue: Promise<void> = Promise.resolve();

  constructor(deps: RunnerDeps, datacenter: string) {
    this.#deps = deps;
    this.#datacenter = datacenter;
  }

  get runners(): ReadonlyMap<string, { runner: ProxyRunner }> {
    return this.#runners;
  }

  /**
   * Starts, replaces and stops runners so that there is one per local sidecar. Calls run one
   * at a time, in order: one that waits for a runner to stop must not decide on a state a
   * later call has changed, nor start runners after stop().
   */
  reconcile(sidecars: Iterable<LocalSidecar>): Promise<void> {
    const list = [...sidecars];
    const run = this.#queue.then(() => this.#reconcile(list));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reconcile(sidecars: LocalSidecar[]): Promise<void> {
    if (this.#stopped) return;
    const wanted = new Map<string, SidecarSpec>();
    for (const s of sidecars) {
      const spec = sidecarSpec(s, this.#datacenter);
      if (spec) wanted.set(spec.id, spec);
    }
    for (const [id, r] of [...this.#runners]) {
      const spec = wanted.get(id);
      if (spec && JSON.stringify(spec) === r.key) continue;
      this.#runners.delete(id);
      if (!spec) {
        await r.runner.stop();
        continue;
      }
      // A changed definition: the new runner takes the proxy over, whose listeners serve
      // the old plan until the new plan's listeners are open (make before break).
      const runner = new ProxyRunner(spec, this.#deps, r.runner);
      this.#runners.set(id, { runner, key: JSON.stringify(spec) });
      await r.runner.stop({ handOver: true });
      if (this.#stopped) {
        await runner.stop();
        continue;
      }
      // A later reconcile may have replaced (and stopped) it meanwhile.
      if (this.#runners.get(id)?.runner === runner) runner.start();
    }
    for (const [id, spec] of wanted) {
      if (this.#stopped) return;
      if (this.#runners.has(id)) continue;
      const runner = new ProxyRunner(spec, this.#deps);
      this.#runners.set(id, { runner, key: JSON.stringify(spec) });
      runner.start();
    }
  }

  /** Settles once the reconciles asked for so far are done and each runner's saved plan serves. */
  async restored(): Promise<void> {
    await this.#queue;
    await Promise.all([...this.#runners.values()].map((r) => r.runner.restored));
  }

  /**
   * Drains every sidecar's proxy at once (see ProxyRunner.drain); no runner starts afterwards.
   * Resolves with the connections cut at the time limit.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.#stopped = true;
    await this.#queue;
    const all = [...this.#runners.values()];
    this.#runners.clear();
    const cut = await Promise.all(all.map((r) => r.runner.drain(timeoutMs)));
    return cut.reduce((a, b) => a + b, 0);
  }

  /**
   * Stops every runner's watches and leaves its proxy serving the plan in force: the data
   * plane (`trellis proxy`) carries on while the agent restarts.
   */
  async release(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
    const all = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(all.map((r) => r.runner.stop({ handOver: true })));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // A reconcile under way finishes first (it starts nothing more once stopped).
    await this.#queue;
    const all = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(all.map((r) => r.runner.stop()));
  }
}
