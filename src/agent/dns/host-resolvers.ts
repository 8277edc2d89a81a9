/**
 * The host's own DNS servers, for forwarding names outside the mesh domain when `recursors` is
 * not set. A transparently captured app sends every port-53 query to the agent, so without a
 * default its ordinary lookups would all be REFUSED.
 *
 * Read from resolv.conf (`nameserver` lines). When that points at systemd-resolved's stub
 * (127.0.0.53 / 127.0.0.54), the stub is not used: resolved's own upstreams are read from
 * the file it keeps for that (/run/systemd/resolve/resolv.conf). A server that is this agent's
 * own DNS listener is dropped, or queries would go round in a loop.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { RecursorAddress } from '../../config/dns-values.js';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
/** systemd-resolved's list of its upstream servers (the real ones, not its stub). */
export const RESOLVED_UPSTREAM_CONF = '/run/systemd/resolve/resolv.conf';

const RESOLVED_STUBS = new Set(['127.0.0.53', '127.0.0.54']);

export interface HostResolverOptions {
  /** Default /etc/resolv.conf. */
  resolvConf?: string;
  /** Default /run/systemd/resolve/resolv.conf. */
  resolvedUpstreamConf?: string;
  /** Where this agent answers DNS: never forwarded to. */
  own: RecursorAddress;
  /** This host's addresses (default: its interfaces'), for an agent listening on all of them. */
  localAddresses?: readonly string[];
}

export interface HostResolvers {
  recursors: RecursorAddress[];
  /** The files read, in order. */
  sources: string[];
  /** Servers left out, with the reason (for the log). */
  skipped: { server: string; reason: string }[];
}

/** The nameserver addresses of a resolv.conf text, in order (zone ids kept for the caller). */
export function nameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

function readNameservers(path: string): string[] | undefined {
  try {
    return nameservers(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

export function hostResolvers(opts: HostResolverOptions): HostResolvers {
  const resolvConf = opts.resolvConf ?? DEFAULT_RESOLV_CONF;
  const result: HostResolvers = { recursors: [], sources: [], skipped: [] };
  let servers = readNameservers(resolvConf);
  if (servers === undefined) {
    result.skipped.push({ server: resolvConf, reason: 'cannot be read' });
    return result;
  }
  result.sources.push(resolvConf);
  if (servers.some((s) => RESOLVED_STUBS.has(s))) {
    const upstreamConf = opts.resolvedUpstreamConf ?? RESOLVED_UPSTREAM_CONF;
    const upstream = readNameservers(upstreamConf);
    if (upstream === undefined) {
      result.skipped.push({
        server: servers.filter((s) => RESOLVED_STUBS.has(s)).join(', '),
        reason: `systemd-resolved's stub, and its upstream list ${upstreamConf} cannot be read`,
      });
    } else {
      result.sources.push(upstreamConf);
    }
    servers = [...servers.filter((s) => !RESOLVED_STUBS.has(s)), ...(upstream ?? [])];
  }
  const local = new Set(opts.localAddresses ?? interfaceAddresses());
  const ownIsWildcard = opts.own.host === '0.0.0.0' || opts.own.host === '::';
  for (const server of servers) {
    if (RESOLVED_STUBS.has(server)) continue; // listed in resolved's own file: never its stub
    if (isIP(server) === 0 || server.includes('%')) {
      // A link-local IPv6 server with a zone id (fe80::1%eth0) cannot be dialled without it.
      result.skipped.push({ server, reason: 'not a plain IP address' });
      continue;
    }
    const loop =
      opts.own.port === 53 &&
      (server === opts.own.host || (ownIsWildcard && (local.has(server) || isLoopback(server))));
    if (loop) {
      result.skipped.push({ server, reason: "this agent's own DNS (a loop)" });
      continue;
    }
    if (!result.recursors.some((r) => r.host === server))
      result.recursors.push({ host: server, port: 53 });
  }
  return result;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}
