/**
 * The agent's local state: the services and checks this host runs, where each came from (a
 * config file or the API), and each check's current status. The catalog copy is derived from
 * it by anti-entropy (local state wins). Every change bumps `version` and calls `onChange`.
 * A service registered with `Connect.SidecarService` brings its sidecar proxy as a second
 * service (sidecar.ts), which goes away with it.
 */
import {
  CHECK_DEFINITION_FIELDS,
  NODE_MAINT_CHECK_ID,
  SERVICE_MAINT_PREFIX,
  toAgentService,
  type AgentService,
  type CheckDefinition,
  type CheckRegistration,
  type CheckType,
  type HealthStatus,
  type ServiceRegistration,
} from '../../api/index.js';
import { badRequest, notFound } from '../../core/index.js';
import type { AliasTarget } from '../checks/index.js';
import {
  checkListenerClash,
  expandSidecar,
  type ExpandedSidecar,
  LISTENING_CHECK_NAME,
  listeningCheckID,
  proxyListeners,
  sidecarChecks,
  type ReservedListener,
  sidecarID,
  validateProxy,
  withUpstreamDefaults,
} from './sidecar.js';

export type Source = 'file' | 'api';

export type LocalService = Omit<AgentService, 'CreateIndex' | 'ModifyIndex'>;

export interface LocalCheck {
  CheckID: string;
  Name: string;
  Notes: string;
  ServiceID: string;
  Status: HealthStatus;
  Output: string;
  Type: string;
  Interval: string;
  Timeout: string;
  Definition: CheckDefinition;
  /** What the scheduler runs; absent for maintenance checks. */
  def?: CheckType;
}

export interface ServiceEntry {
  service: LocalService;
  /** The registration as given, kept for persistence and reload comparisons. */
  registration: ServiceRegistration;
  source: Source;
  checkIDs: string[];
  /** ACL token the service was registered with; anti-entropy writes it to the catalog with it. */
  token?: string;
  /** Set on a sidecar proxy the agent registered for this service id. */
  sidecarOf?: string;
}

export interface AddServiceOptions {
  /** Adds `reg` as the sidecar of this service id (a saved sidecar being restored). */
  sidecarOf?: string;
  /**
   * Services about to be replaced by the same batch (a config dir reload, checked as a whole
   * by checkListenerSet first): their listeners do not count as clashes.
   */
  replacing?: ReadonlySet<string>;
}

type Listening = Parameters<typeof proxyListeners>[0];

export interface CheckEntry {
  check: LocalCheck;
  source: Source;
  /** A check registered with its service goes away with it. */
  ownedByService: boolean;
  registration?: CheckRegistration;
}

export interface CheckHooks {
  /** Starts running a check; throws (user error) when it cannot run. */
  start(id: string, def: CheckType, status: HealthStatus): void;
  stop(id: string): void;
}

function checkType(def: CheckType): string {
  if (def.TTL) return 'ttl';
  if (def.HTTP) return 'http';
  if (def.TCP) return 'tcp';
  if (def.GRPC) return 'grpc';
  if (def.ScriptArgs) return 'script';
  if (def.AliasService) return 'alias';
  return '';
}

function ownChecks(reg: ServiceRegistration): CheckType[] {
  return [...(reg.Check ? [reg.Check] : []), ...(reg.Checks ?? [])];
}

function definitionOf(def: CheckType): CheckDefinition {
  const d: CheckDefinition = {};
  for (const k of CHECK_DEFINITION_FIELDS) {
    if (def[k] !== undefined) (d as Record<string, unknown>)[k] = def[k];
  }
  return d;
}

export class LocalState {
  readonly services = new Map<string, ServiceEntry>();
  readonly checks = new Map<string, CheckEntry>();
  /**
   * Sidecar id -> the port it had before the agent restarted. While set, a sidecar keeps its
   * port and no other sidecar is given it; the agent clears it once everything is loaded.
   */
  readonly sidecarPortHints = new Map<string, number>();
  version = 0;
  /**
   * The agent's own listeners (HTTP API, DNS, metrics, transparent upstream listeners): a
   * proxy listener on one of them is refused, and sidecar ports are never assigned from them.
   */
  reserved: () => Iterable<ReservedListener> = () => [];
  #hooks: CheckHooks;
  #onChange: () => void;

  constructor(hooks: CheckHooks, onChange: () => void) {
    this.#hooks = hooks;
    this.#onChange = onChange;
  }

  #changed(): void {
    this.version++;
    this.#onChange();
  }

  /**
   * Adds or replaces a service and the checks it defines. Checks are validated (and started)
   * before anything is replaced, so a bad check leaves the old registration in force. With
   * `Connect.SidecarService` the sidecar is added too (same source and token), or neither is.
   */
  addService(
    reg: ServiceRegistration,
    source: Source,
    replaceExistingChecks = true,
    token?: string,
    opts: AddServiceOptions = {},
  ): LocalService {
    const parentID = reg.ID || reg.Name;
    const view = new Map<string, Listening>();
    for (const [id, e] of this.services) if (!opts.replacing?.has(id)) view.set(id, e.service);
    const prepared = this.#prepare(reg, view);
    if (!prepared.sidecar) {
      const own = prepared.own;
      const defs = opts.sidecarOf ? sidecarChecks(own, opts.sidecarOf) : ownChecks(own);
      return this.#add(own, defs, source, replaceExistingChecks, token, opts.sidecarOf);
    }
    const expanded = prepared.sidecar;
    const old = this.services.get(parentID);
    const service = this.#add(
      expanded.parent,
      ownChecks(expanded.parent),
      source,
      replaceExistingChecks,
      token,
    );
    try {
      this.#add(expanded.sidecar, expanded.checks, source, replaceExistingChecks, token, parentID);
    } catch (err) {
      // The pair goes in together or not at all: put the service back as it was.
      if (old)
        this.#add(
          old.registration,
          this.#checksOf(old),
          old.source,
          true,
          old.token,
          old.sidecarOf,
        );
      else this.#remove(parentID);
      throw err;
    }
    return service;
  }

  #checksOf(e: ServiceEntry): CheckType[] {
    return e.sidecarOf ? sidecarChecks(e.registration, e.sidecarOf) : ownChecks(e.registration);
  }

  /**
   * Expands and validates `reg` against the services in `view` (which it replaces there):
   * picks the sidecar's port, refuses listener clashes. Changes nothing of this state.
   */
  #prepare(
    reg: ServiceRegistration,
    view: Map<string, Listening>,
  ): { own: ServiceRegistration; sidecar?: undefined } | { sidecar: ExpandedSidecar } {
    const parentID = reg.ID || reg.Name;
    const sid = sidecarID(parentID);
    const expanded = expandSidecar(reg, {
      used: this.#portsInUse(sid, view),
      previous: this.services.get(sid)?.service.Port ?? this.sidecarPortHints.get(sid),
    });
    const others = (except: string[]): { id: string; svc: Listening }[] =>
      [...view].filter(([id]) => !except.includes(id)).map(([id, svc]) => ({ id, svc }));
    if (!expanded) {
      const own = reg.Proxy?.Upstreams
        ? { ...reg, Proxy: { ...reg.Proxy, Upstreams: withUpstreamDefaults(reg.Proxy.Upstreams) } }
        : reg;
      validateProxy(own);
      checkListenerClash(own, others([parentID]), '', this.reserved());
      view.set(parentID, own);
      return { own };
    }
    checkListenerClash(
      expanded.sidecar,
      others([parentID, sid]),
      'Connect.SidecarService.',
      this.reserved(),
    );
    view.set(parentID, expanded.parent);
    view.set(sid, expanded.sidecar);
    return { sidecar: expanded };
  }

  /**
   * Checks a config dir's services as a whole before any is added: `regs` replace every
   * service `replaced` says, and each is checked (ports, listener clashes) against those that
   * stay and those before it. Throws the first service's error, with its index.
   */
  checkServiceSet(
    regs: ServiceRegistration[],
    replaced: (id: string, e: ServiceEntry) => boolean,
  ): void {
    const view = new Map<string, Listening>();
    for (const [id, e] of this.services) if (!replaced(id, e)) view.set(id, e.service);
    regs.forEach((reg, index) => {
      try {
        this.#prepare(reg, view);
      } catch (err) {
        throw Object.assign(err as Error, { index });
      }
    });
  }

  /** Ports a new sidecar must not get: other services' and proxy upstream listeners'. */
  #portsInUse(exceptID: string, view: ReadonlyMap<string, Listening>): Set<number> {
    const used = new Set<number>();
    for (const [id, svc] of view) {
      if (id === exceptID) continue;
      if (svc.Port) used.add(svc.Port);
      for (const u of svc.Proxy?.Upstreams ?? []) if (u.LocalBindPort) used.add(u.LocalBindPort);
    }
    // Services a batch replaces keep their ports until then.
    for (const [id, e] of this.services) {
      if (id === exceptID || view.has(id)) continue;
      if (e.service.Port) used.add(e.service.Port);
      for (const u of e.service.Proxy?.Upstreams ?? [])
        if (u.LocalBindPort) used.add(u.LocalBindPort);
    }
    for (const [id, port] of this.sidecarPortHints) if (id !== exceptID) used.add(port);
    for (const r of this.reserved()) used.add(r.port);
    return used;
  }

  #add(
    reg: ServiceRegistration,
    defs: CheckType[],
    source: Source,
    replaceExistingChecks: boolean,
    token: string | undefined,
    sidecarOf?: string,
  ): LocalService {
    const service = toAgentService(reg);
    const id = service.ID;
    const planned = defs.map((def, i) => {
      const checkID =
        def.CheckID || (defs.length === 1 ? `service:${id}` : `service:${id}:${i + 1}`);
      const check: LocalCheck = {
        CheckID: checkID,
        Name: def.Name || `Service '${service.Service}' check`,
        Notes: def.Notes ?? '',
        ServiceID: id,
        Status: def.Status ?? 'critical',
        Output: '',
        Type: checkType(def),
        Interval: def.Interval ?? '',
        Timeout: def.Timeout ?? '',
        Definition: definitionOf(def),
        def,
      };
      return check;
    });
    const ids = new Set<string>();
    for (const c of planned) {
      if (ids.has(c.CheckID))
        throw badRequest(`Check ID "${c.CheckID}" is used twice in service "${id}"`, 'Checks');
      ids.add(c.CheckID);
      const other = this.checks.get(c.CheckID);
      if (other && other.check.ServiceID !== id)
        throw badRequest(
          `Check ID "${c.CheckID}" is already used by another registration`,
          'Checks',
        );
    }
    const old = this.services.get(id);
    // Start new checks first: if one cannot run, undo and leave the old registration alone.
    const started: string[] = [];
    try {
      for (const c of planned) {
        const prev = this.checks.get(c.CheckID);
        if (prev && sameDef(prev.check.def, c.def)) continue;
        if (prev) this.#hooks.stop(c.CheckID);
        this.#hooks.start(c.CheckID, c.def!, prev?.check.Status ?? c.Status);
        started.push(c.CheckID);
      }
    } catch (err) {
      for (const s of started) this.#hooks.stop(s);
      for (const s of started) {
        const prev = this.checks.get(s);
        if (prev?.check.def) this.#hooks.start(s, prev.check.def, prev.check.Status);
      }
      throw err;
    }
    for (const c of planned) {
      const prev = this.checks.get(c.CheckID);
      if (prev && sameDef(prev.check.def, c.def)) {
        prev.check = { ...c, Status: prev.check.Status, Output: prev.check.Output };
        continue;
      }
      if (prev) c.Status = prev.check.Status;
      this.checks.set(c.CheckID, { check: c, source, ownedByService: true });
    }
    if (old && replaceExistingChecks) {
      for (const cid of old.checkIDs) {
        if (!ids.has(cid) && this.checks.get(cid)?.ownedByService) {
          this.#hooks.stop(cid);
          this.checks.delete(cid);
        }
      }
    }
    const keep = old && !replaceExistingChecks ? old.checkIDs.filter((c) => !ids.has(c)) : [];
    // A sidecar with checks of its own replaces all the defaults, the listening one included.
    const listening = this.checks.get(listeningCheckID(id));
    if (sidecarOf && ownChecks(reg).length > 0 && listening && !listening.check.def)
      this.checks.delete(listening.check.CheckID);
    this.services.set(id, {
      service,
      registration: reg,
      source,
      checkIDs: [...keep, ...ids],
      ...(token ? { token } : {}),
      ...(sidecarOf ? { sidecarOf } : {}),
    });
    this.#changed();
    return service;
  }

  /** Removes a service, its checks and the sidecar the agent registered with it. */
  removeService(id: string): void {
    if (!this.services.has(id))
      throw notFound(
        `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
      );
    this.#remove(id);
  }

  #remove(id: string): void {
    if (!this.services.has(id)) return;
    for (const [cid, c] of this.checks) {
      if (c.check.ServiceID === id) {
        this.#hooks.stop(cid);
        this.checks.delete(cid);
      }
    }
    this.services.delete(id);
    for (const [sid, e] of [...this.services]) if (e.sidecarOf === id) this.#remove(sid);
    this.#changed();
  }

  /**
   * The proxy runtime's hook: sets the "Connect Sidecar Listening" check of a sidecar (Consul's
   * first default check, `service:<sidecar id>:1`), created on first use, to say whether its
   * proxy is listening with a certificate and a complete plan. It is not persisted (the
   * runtime reports again after a restart), survives re-registrations and goes away with the
   * sidecar. False, changing nothing, for an id that is not a sidecar of this agent, or one
   * whose definition brings its own checks (which replace the defaults, as in Consul).
   */
  setSidecarListening(sidecar: string, status: HealthStatus, output: string): boolean {
    const entry = this.services.get(sidecar);
    if (!entry?.sidecarOf || ownChecks(entry.registration).length > 0) return false;
    const id = listeningCheckID(sidecar);
    const prev = this.checks.get(id);
    if (prev && prev.check.Status === status && prev.check.Output === output) return true;
    this.checks.set(id, {
      check: {
        CheckID: id,
        Name: LISTENING_CHECK_NAME,
        Notes: '',
        ServiceID: sidecar,
        Status: status,
        Output: output,
        Type: 'proxy',
        Interval: '',
        Timeout: '',
        Definition: {},
      },
      source: entry.source,
      ownedByService: true,
    });
    this.#changed();
    return true;
  }

  /** What an alias check of `serviceID` follows: its checks and the node's. */
  aliasTarget(serviceID: string, node: string): AliasTarget {
    const checks: LocalCheck[] = [];
    for (const { check } of this.checks.values())
      if (check.ServiceID === serviceID || check.ServiceID === '') checks.push(check);
    return { node, exists: this.services.has(serviceID), checks };
  }

  addCheck(reg: CheckRegistration & { ServiceID?: string }, source: Source): LocalCheck {
    const id = reg.ID || reg.CheckID || reg.Name;
    if (!id) throw badRequest('Missing check name', 'Name');
    const serviceID = reg.ServiceID ?? '';
    if (serviceID && !this.services.has(serviceID))
      throw notFound(`ServiceID "${serviceID}" does not exist`);
    const kinds = [reg.ScriptArgs, reg.HTTP, reg.TCP, reg.GRPC, reg.TTL].filter(
      (x) => x !== undefined,
    ).length;
    if (kinds === 0)
      throw badRequest('Invalid check: TTL, HTTP, TCP, GRPC or ScriptArgs must be set', 'TTL');
    const prev = this.checks.get(id);
    const check: LocalCheck = {
      CheckID: id,
      Name: reg.Name || id,
      Notes: reg.Notes ?? '',
      ServiceID: serviceID,
      Status: prev?.check.Status ?? reg.Status ?? 'critical',
      Output: prev?.check.Output ?? '',
      Type: checkType(reg),
      Interval: reg.Interval ?? '',
      Timeout: reg.Timeout ?? '',
      Definition: definitionOf(reg),
      def: reg,
    };
    if (prev) this.#hooks.stop(id);
    try {
      this.#hooks.start(id, reg, check.Status);
    } catch (err) {
      if (prev?.check.def) this.#hooks.start(id, prev.check.def, prev.check.Status);
      throw err;
    }
    this.checks.set(id, { check, source, ownedByService: false, registration: reg });
    const svc = serviceID ? this.services.get(serviceID) : undefined;
    if (svc && !svc.checkIDs.includes(id)) svc.checkIDs.push(id);
    this.#changed();
    return check;
  }

  removeCheck(id: string): void {
    const entry = this.checks.get(id);
    if (!entry)
      throw notFound(
        `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`,
      );
    this.#hooks.stop(id);
    this.checks.delete(id);
    this.#changed();
  }

  /** Records a check result (from the scheduler); ignores checks removed meanwhile. */
  setCheckStatus(id: string, status: HealthStatus, output: string): void {
    const entry = this.checks.get(id);
    if (!entry) return;
    if (entry.check.Status === status && entry.check.Output === output) return;
    entry.check = { ...entry.check, Status: status, Output: output };
    this.#changed();
  }

  /** Node maintenance: a critical `_node_maintenance` check, as Consul does it. */
  setNodeMaintenance(enable: boolean, reason: string): void {
    this.#setMaintenance(NODE_MAINT_CHECK_ID, '', 'Node Maintenance Mode', enable, reason);
  }

  setServiceMaintenance(serviceID: string, enable: boolean, reason: string): void {
    if (!this.services.has(serviceID))
      throw notFound(`No service registered with ID "${serviceID}"`);
    this.#setMaintenance(
      SERVICE_MAINT_PREFIX + serviceID,
      serviceID,
      'Service Maintenance Mode',
      enable,
      reason,
    );
  }

  #setMaintenance(
    id: string,
    serviceID: string,
    name: string,
    enable: boolean,
    reason: string,
  ): void {
    if (!enable) {
      if (this.checks.delete(id)) this.#changed();
      return;
    }
    const notes =
      reason ||
      'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';
    this.checks.set(id, {
      check: {
        CheckID: id,
        Name: name,
        Notes: notes,
        ServiceID: serviceID,
        Status: 'critical',
        Output: '',
        Type: 'maintenance',
        Interval: '',
        Timeout: '',
        Definition: {},
      },
      source: 'api',
      ownedByService: serviceID !== '',
    });
    this.#changed();
  }

  /** Checks of a service, in registration order. */
  checksOf(serviceID: string): LocalCheck[] {
    const out: LocalCheck[] = [];
    for (const c of this.checks.values()) if (c.check.ServiceID === serviceID) out.push(c.check);
    return out;
  }
}

function sameDef(a: CheckType | undefined, b: CheckType | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
