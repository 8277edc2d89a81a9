/**
 * The agent's local state: the services and checks this host runs, where each came from (a
 * config file or the API), and each check's current status. The catalog copy is derived from
 * it by anti-entropy (local state wins). Every change bumps `version` and calls `onChange`.
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
}

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
  return '';
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
  version = 0;
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
   * before anything is replaced, so a bad check leaves the old registration in force.
   */
  addService(
    reg: ServiceRegistration,
    source: Source,
    replaceExistingChecks = true,
    token?: string,
  ): LocalService {
    const service = toAgentService(reg);
    const id = service.ID;
    const defs = [...(reg.Check ? [reg.Check] : []), ...(reg.Checks ?? [])];
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
    this.services.set(id, {
      service,
      registration: reg,
      source,
      checkIDs: [...keep, ...ids],
      ...(token ? { token } : {}),
    });
    this.#changed();
    return service;
  }

  removeService(id: string): void {
    const entry = this.services.get(id);
    if (!entry)
      throw notFound(
        `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
      );
    for (const [cid, c] of this.checks) {
      if (c.check.ServiceID === id) {
        this.#hooks.stop(cid);
        this.checks.delete(cid);
      }
    }
    this.services.delete(id);
    this.#changed();
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
