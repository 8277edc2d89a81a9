/**
 * Nodes, service instances and health checks, with the secondary indexes the reads need
 * (instances by service name, checks by node). Rows are stored in their wire shape so reads
 * only assemble, never convert.
 */
import type { AgentService, HealthCheck, Node } from '../../api/index.js';
import { VipTable } from './vip-table.js';

/** A service instance: the node it runs on, and the instance in its wire shape. */
export interface ServiceRow {
  node: string;
  svc: AgentService & { CreateIndex: number; ModifyIndex: number };
}

/** The mesh service an instance puts in the mesh: a sidecar's destination, or itself if native. */
function meshService(row: ServiceRow): string | undefined {
  const s = row.svc;
  if (s.Kind === 'connect-proxy') return s.Proxy?.DestinationServiceName || undefined;
  return s.Connect?.Native ? s.Service : undefined;
}

export class CatalogTable {
  readonly nodes = new Map<string, Node>();
  /** Virtual IPs of mesh services; replaced by the snapshot's table on restore. */
  vips = new VipTable();
  /** node name -> service id -> instance */
  readonly servicesByNode = new Map<string, Map<string, ServiceRow>>();
  /** service name -> instances (keyed "node\0id") */
  readonly servicesByName = new Map<string, Map<string, ServiceRow>>();
  /** node name -> check id -> check */
  readonly checksByNode = new Map<string, Map<string, HealthCheck>>();
  instanceCount = 0;
  /** service name -> tag -> number of instances carrying it (for /v1/catalog/services) */
  readonly #tagCounts = new Map<string, Map<string, number>>();
  #sortedNames: string[] | null = null;

  /** Service names in order; recomputed only when a name appears or disappears. */
  serviceNames(): readonly string[] {
    this.#sortedNames ??= [...this.servicesByName.keys()].sort();
    return this.#sortedNames;
  }

  /** The union of the tags of a service's instances, sorted. */
  serviceTags(name: string): string[] {
    const counts = this.#tagCounts.get(name);
    return counts ? [...counts.keys()].sort() : [];
  }

  #countTags(row: ServiceRow, delta: 1 | -1): void {
    let counts = this.#tagCounts.get(row.svc.Service);
    if (!counts) this.#tagCounts.set(row.svc.Service, (counts = new Map()));
    for (const t of new Set(row.svc.Tags)) {
      const n = (counts.get(t) ?? 0) + delta;
      if (n > 0) counts.set(t, n);
      else counts.delete(t);
    }
    if (counts.size === 0) this.#tagCounts.delete(row.svc.Service);
  }

  getService(node: string, id: string): ServiceRow | undefined {
    return this.servicesByNode.get(node)?.get(id);
  }

  putService(row: ServiceRow): void {
    const old = this.getService(row.node, row.svc.ID);
    if (old && old.svc.Service !== row.svc.Service) this.#unindexName(old);
    if (old) this.#countTags(old, -1);
    else this.instanceCount++;
    this.#countTags(row, 1);
    // Retain before releasing, so a re-registration never frees and re-takes the address.
    const mesh = meshService(row);
    if (mesh) this.vips.retain(mesh);
    const oldMesh = old && meshService(old);
    if (oldMesh) this.vips.release(oldMesh);
    let byId = this.servicesByNode.get(row.node);
    if (!byId) this.servicesByNode.set(row.node, (byId = new Map()));
    byId.set(row.svc.ID, row);
    let byName = this.servicesByName.get(row.svc.Service);
    if (!byName) {
      this.servicesByName.set(row.svc.Service, (byName = new Map()));
      this.#sortedNames = null;
    }
    byName.set(`${row.node}\0${row.svc.ID}`, row);
  }

  deleteService(node: string, id: string): ServiceRow | undefined {
    const old = this.getService(node, id);
    if (!old) return undefined;
    this.instanceCount--;
    this.#countTags(old, -1);
    const mesh = meshService(old);
    if (mesh) this.vips.release(mesh);
    const byId = this.servicesByNode.get(node)!;
    byId.delete(id);
    if (byId.size === 0) this.servicesByNode.delete(node);
    this.#unindexName(old);
    return old;
  }

  #unindexName(row: ServiceRow): void {
    const byName = this.servicesByName.get(row.svc.Service);
    if (!byName) return;
    byName.delete(`${row.node}\0${row.svc.ID}`);
    if (byName.size === 0) {
      this.servicesByName.delete(row.svc.Service);
      this.#sortedNames = null;
    }
  }

  getCheck(node: string, id: string): HealthCheck | undefined {
    return this.checksByNode.get(node)?.get(id);
  }

  putCheck(check: HealthCheck): void {
    let byId = this.checksByNode.get(check.Node);
    if (!byId) this.checksByNode.set(check.Node, (byId = new Map()));
    byId.set(check.CheckID, check);
  }

  deleteCheck(node: string, id: string): HealthCheck | undefined {
    const byId = this.checksByNode.get(node);
    const old = byId?.get(id);
    if (!byId || !old) return undefined;
    byId.delete(id);
    if (byId.size === 0) this.checksByNode.delete(node);
    return old;
  }

  /** Node-level checks (no ServiceID) of a node. */
  nodeChecks(node: string): HealthCheck[] {
    const out: HealthCheck[] = [];
    const byId = this.checksByNode.get(node);
    if (byId) for (const c of byId.values()) if (c.ServiceID === '') out.push(c);
    return out;
  }

  /** Checks of one service instance. */
  serviceChecks(node: string, serviceID: string): HealthCheck[] {
    const out: HealthCheck[] = [];
    const byId = this.checksByNode.get(node);
    if (byId) for (const c of byId.values()) if (c.ServiceID === serviceID) out.push(c);
    return out;
  }

  /** Service names with instances on a node. */
  serviceNamesOn(node: string): Set<string> {
    const names = new Set<string>();
    const byId = this.servicesByNode.get(node);
    if (byId) for (const s of byId.values()) names.add(s.svc.Service);
    return names;
  }
}
