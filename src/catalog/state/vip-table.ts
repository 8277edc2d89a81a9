/**
 * Virtual IPs of mesh services (transparent proxying, `<svc>.virtual.consul`): each service
 * that is in the mesh (has a sidecar proxy, or is Connect-native) holds one address from a
 * range (240.0.0.0/4 by default) for as long as any instance of it is in the mesh, and keeps
 * it across restarts (the table is part of snapshots). Allocation is deterministic (the lowest
 * freed address first, else the next never used one), so every server replaying the same log
 * assigns the same addresses.
 */

export interface VipRange {
  /** First address of the range, as a 32-bit number. */
  base: number;
  /** Addresses in the range. */
  size: number;
}

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
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits < 4 || bits > 30)
    throw new Error(`virtual IP range ${JSON.stringify(cidr)}: use an IPv4 CIDR from /4 to /30`);
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  if (addr % size !== 0)
    throw new Error(`virtual IP range ${cidr}: the address has bits set past the /${bits} prefix`);
  return { base: addr, size };
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export class VipTable {
  readonly #rangeText: string;
  readonly #range: VipRange;
  readonly #assigned = new Map<string, number>();
  /** Mesh instances per service: its address is freed when the count reaches zero. */
  readonly #refs = new Map<string, number>();
  #freed: number[] = [];
  #next = 1;

  constructor(range = DEFAULT_VIP_RANGE) {
    this.#rangeText = range;
    this.#range = parseVipRange(range);
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
    if (this.#assigned.has(service)) return true;
    let off = this.#freed.shift();
    if (off === undefined) {
      // The broadcast-like last address of the range is never handed out either.
      if (this.#next >= this.#range.size - 1) return false;
      off = this.#next++;
    }
    this.#assigned.set(service, off);
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
    // Keep freed offsets sorted so the lowest is reused first (a few thousand at most).
    let i = this.#freed.length;
    while (i > 0 && this.#freed[i - 1]! > off) i--;
    this.#freed.splice(i, 0, off);
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
    for (const [svc, off] of s.assigned) t.#assigned.set(svc, off);
    t.#freed = [...s.freed];
    t.#next = s.next;
    return t;
  }
}
