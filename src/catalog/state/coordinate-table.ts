/**
 * Network coordinates by node. Trellis runs no Serf/Vivaldi, so it computes none: it keeps the
 * coordinates clients send (PUT /v1/coordinate/update, Consul's shape) and answers a node
 * without one with the origin coordinate a fresh Consul agent starts from. A node's coordinate
 * goes with the node.
 */
import { originCoordinate, type Coordinate, type CoordinateEntry } from '../../api/index.js';
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

export interface CoordinateSetCommand {
  type: 'coordinate-set';
  entries: CoordinateEntry[];
}

export class CoordinateTable {
  #byNode = new Map<string, CoordinateEntry>();

  get(node: string): CoordinateEntry | undefined {
    return this.#byNode.get(node);
  }

  /** The node's coordinate, or the origin when it has sent none. */
  coordinateOf(node: string): Coordinate {
    return this.#byNode.get(node)?.Coord ?? originCoordinate();
  }

  set(entries: readonly CoordinateEntry[], change: ChangeSet): void {
    for (const e of entries) this.#byNode.set(e.Node, e);
    if (entries.length > 0) change.keys.add(K.coordinates);
  }

  dropNode(node: string, change: ChangeSet): void {
    if (this.#byNode.delete(node)) change.keys.add(K.coordinates);
  }

  toJSON(): CoordinateEntry[] {
    return [...this.#byNode.values()];
  }

  static from(rows: CoordinateEntry[] | undefined): CoordinateTable {
    const t = new CoordinateTable();
    for (const r of rows ?? []) t.#byNode.set(r.Node, r);
    return t;
  }
}
