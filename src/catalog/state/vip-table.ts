/**
 * Virtual IPs of mesh services (transparent proxying, `<svc>.virtual.consul`): each service
 * that is in the mesh (has a sidecar proxy, or is Connect-native) holds one address from a
 * range (240.0.0.0/4 by default) for as long as any instance of it is in the mesh, and keeps
 * it across restarts (the table is part of snapshots). Allocation is deterministic (the lowest
 * freed address first, else the next never used one), so every server replaying the same log
 * assigns the same addresses.
 */

import { formatIpv4, parseIpv4Range, type Ipv4Range } from '../../core/ipv4-range.js';

export { formatIpv4 };
export type VipRange = Ipv4Range;

export interface VipTableState {
  range: string;
  /** service -> offset in the range */
  assigned: [string, number][];
  /** Offsets freed and not yet reused, ascending. */
  freed: number[];
  /** The next never-used offset. */
  next: number;
}

export const DEFAULT_VIP_RANGE = '240.0.0.0/4';

/** `a.b.c.d/n` -> range; offsets 0 (the network address) is never handed out. */
export function parseVipRange(cidr: string): VipRange {
  return parseIpv4Range(cidr);
}

/** What a range change did: kept addresses, moved ones (old -> new) and ones left without. */
export interface VipRebase {
  kept: string[];
  moved: { service: string; from: string; to: string }[];
  dropped: { service: string; from: string }[];
}

export class VipTable {
  readonly #rangeText: string;
  readonly #range: VipRange;
  readonly #assigned = new Map<string, number>();
  /** Offsets in use, for allocation after a range change (kept offsets may lie past #next). */
  readonly #taken = new Set<number>();
  /** Mesh instances per service: its address is freed when the count reaches zero. */
  readonly #refs = new Map<string, number>();
  #freed: number[] = [];
  #next = 1;

  constructor(range = DEFAULT_VIP_RANGE) {
    this.#rangeText = range;
    this.#range = parseVipRange(range);
  }

  /** The range as configured (`240.0.0.0/4`). */
  get rangeText(): string {
    return this.#rangeText;
  }

  /** Whether `cidr` names the same addresses as this table's range. */
  sameRange(cidr: string): boolean {
    const r = parseVipRange(cidr);
    return r.base === this.#range.base && r.size === this.#range.size;
  }

  /** The service's virtual IP, if it is in the mesh. */
  get(service: string): string | undefined {
    const off = this.#assigned.get(service);
    return off === undefined ? undefined : formatIpv4(this.#range.base + off);
  }

  /** Every assignment, by service name. */
  all(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [s, off] of [...this.#assigned].sort(([a], [b]) => (a < b ? -1 : 1)))
      out.set(s, formatIpv4(this.#range.base + off));
    return out;
  }

  /**
   * One more mesh instance of `service`; the first one gets it an address. Returns false when
   * the range is exhausted (the service then has none; DNS answers its real addresses).
   */
  retain(service: string): boolean {
    this.#refs.set(service, (this.#refs.get(service) ?? 0) + 1);
    return this.#assigned.has(service) || this.#allocate(service);
  }

  #allocate(service: string): boolean {
    let off = this.#freed.shift();
    if (off === undefined) {
      // Offsets kept across a range change may sit ahead of #next: step over them.
      while (this.#taken.has(this.#next)) this.#next++;
      // The broadcast-like last address of the range is never handed out either.
      if (this.#next >= this.#range.size - 1) return false;
      off = this.#next++;
    }
    this.#assigned.set(service, off);
    this.#taken.add(off);
    return true;
  }

  /** One mesh instance fewer; the last one frees the address. */
  release(service: string): void {
    const n = (this.#refs.get(service) ?? 0) - 1;
    if (n > 0) {
      this.#refs.set(service, n);
      return;
    }
    this.#refs.delete(service);
    const off = this.#assigned.get(service);
    if (off === undefined) return;
    this.#assigned.delete(service);
    this.#taken.delete(off);
    // An offset at or past #next is reached by #next again; listing it as freed too would
    // hand it out twice.
    if (off >= this.#next) return;
    // Keep freed offsets sorted so the lowest is reused first (a few thousand at most).
    let i = this.#freed.length;
    while (i > 0 && this.#freed[i - 1]! > off) i--;
    this.#freed.splice(i, 0, off);
  }

  /**
   * The same services in another range: addresses inside the new range are kept, the others
   * (and services the old range had no room for) get new ones, in service-name order, so
   * every replica applying the change assigns the same addresses.
   */
  rebase(range: string): { table: VipTable; change: VipRebase } {
    const t = new VipTable(range);
    const change: VipRebase = { kept: [], moved: [], dropped: [] };
    const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    const services = [...new Set([...this.#assigned.keys(), ...this.#refs.keys()])].sort(byName);
    for (const svc of services) {
      const refs = this.#refs.get(svc);
      if (refs !== undefined) t.#refs.set(svc, refs);
      const off = this.#assigned.get(svc);
      if (off === undefined) continue;
      const moved = this.#range.base + off - t.#range.base;
      if (moved >= 1 && moved < t.#range.size - 1) {
        t.#assigned.set(svc, moved);
        t.#taken.add(moved);
        change.kept.push(svc);
      }
    }
    for (const svc of services) {
      if (t.#assigned.has(svc) || !t.#refs.has(svc)) continue;
      const from = this.get(svc);
      if (t.#allocate(svc)) {
        if (from !== undefined) change.moved.push({ service: svc, from, to: t.get(svc)! });
      } else if (from !== undefined) change.dropped.push({ service: svc, from });
    }
    return { table: t, change };
  }

  toJSON(): VipTableState {
    return {
      range: this.#rangeText,
      assigned: [...this.#assigned],
      freed: [...this.#freed],
      next: this.#next,
    };
  }

  /**
   * The assignments of a snapshot; reference counts come back as the snapshot's services are
   * replayed through retain(), which keeps the restored addresses.
   */
  static from(s: VipTableState | undefined, range = DEFAULT_VIP_RANGE): VipTable {
    const t = new VipTable(s?.range ?? range);
    if (!s) return t;
    for (const [svc, off] of s.assigned) {
      t.#assigned.set(svc, off);
      t.#taken.add(off);
    }
    t.#freed = [...s.freed];
    t.#next = s.next;
    return t;
  }
}
