/**
 * One canonical form of a request's authority (Host, or HTTP/2's :authority), so a host rule
 * cannot be passed by spelling the same host another way, and the application receives the
 * spelling the rule saw. Pure; cheap for the usual lower-case name.
 */
import { isIPv6 } from 'node:net';

/** Ports that name the scheme's default (http and https): `host:80` is `host`. */
const DEFAULT_PORTS = new Set(['80', '443']);
const REG_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:0x[0-9a-f]*|[0-9]+)$/;
const PORT = /^[0-9]{0,5}$/;

/**
 * `Secret.SVC.:80` and `secret.svc` are both `secret.svc`: lower case, one trailing dot
 * removed, a default port (80, 443) or an empty one removed, other ports without leading
 * zeros; IPv6 literals in their compressed form (`[0:0::1]` is `[::1]`); numeric IPv4 in
 * dotted-quad (`127.1` is `127.0.0.1`, as URL parsers read it). Undefined (a 400) for anything
 * else: empty, user info, a zone id, characters outside a host name, a port over 65535.
 */
export function canonicalAuthority(raw: string): string | undefined {
  // A host talks to few authorities: remember the answers (numeric and IPv6 ones go through a
  // URL parser), forgetting them all when there are too many to be worth keeping.
  const known = seen.get(raw);
  if (known !== undefined || seen.has(raw)) return known;
  const c = canonical(raw);
  if (seen.size >= SEEN_MAX) seen.clear();
  seen.set(raw, c);
  return c;
}

const SEEN_MAX = 1024;
const seen = new Map<string, string | undefined>();

function canonical(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > 255) return undefined;
  const a = raw.toLowerCase();
  let host: string;
  let rest: string;
  if (a.charCodeAt(0) === 91 /* '[' */) {
    const end = a.indexOf(']');
    if (end < 0) return undefined;
    const ip = a.slice(1, end);
    if (ip.includes('%') || !isIPv6(ip)) return undefined; // no zone ids ("%eth0")
    host = new URL(`http://[${ip}]/`).hostname;
    rest = a.slice(end + 1);
  } else {
    const colon = a.indexOf(':');
    host = colon < 0 ? a : a.slice(0, colon);
    rest = colon < 0 ? '' : a.slice(colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!REG_NAME.test(host)) return undefined;
    if (NUMERIC_LAST_LABEL.test(host)) {
      // A URL parser reads "127.1" or "0x7f.0.0.1" as 127.0.0.1: so must the rules.
      try {
        host = new URL(`http://${host}/`).hostname;
      } catch {
        return undefined;
      }
    }
  }
  if (rest === '') return host;
  if (rest.charCodeAt(0) !== 58 /* ':' */) return undefined;
  const port = rest.slice(1);
  if (!PORT.test(port)) return undefined;
  if (port === '') return host;
  const n = Number(port);
  if (n > 65535) return undefined;
  return DEFAULT_PORTS.has(String(n)) ? host : `${host}:${n}`;
}
