/**
 * IPv4 CIDR ranges as numbers: the virtual-IP range is checked where it is configured (config
 * files, flags) and used where addresses are handed out (the catalog), so the parser lives here.
 */

export interface Ipv4Range {
  /** First address of the range, as a 32-bit number. */
  base: number;
  /** Addresses in the range. */
  size: number;
}

/** `a.b.c.d/n` with n from 4 to 30 -> range; throws with a message naming the value. */
export function parseIpv4Range(cidr: string, what = 'virtual IP range'): Ipv4Range {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits < 4 || bits > 30)
    throw new Error(`${what} ${JSON.stringify(cidr)}: use an IPv4 CIDR from /4 to /30`);
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  if (addr % size !== 0)
    throw new Error(`${what} ${cidr}: the address has bits set past the /${bits} prefix`);
  return { base: addr, size };
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
