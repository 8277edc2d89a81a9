/**
 * Sidecar proxies, as Consul's agent registers them (agent/sidecar_service.go): a service
 * registered with `Connect.SidecarService` brings a second local service, the proxy that fronts
 * it, filled in with Consul's defaults. Pure: the caller says which ports are taken.
 *
 *   web (port 8080)  --expandSidecar-->  web (Connect: {})
 *                                      + web-sidecar-proxy (connect-proxy, port 21000,
 *                                        Proxy.DestinationServiceName "web", upstreams ...)
 */
import {
  type CheckType,
  type ConnectProxyConfig,
  type ServiceRegistration,
  type Upstream,
} from '../../api/index.js';
import { badRequest } from '../../core/index.js';

export const SIDECAR_SUFFIX = '-sidecar-proxy';
/** Consul's `sidecar_min_port` and `sidecar_max_port` defaults (both inclusive). */
export const SIDECAR_MIN_PORT = 21000;
export const SIDECAR_MAX_PORT = 21255;
/** Where a sidecar finds its application and binds upstream listeners unless told otherwise. */
export const LOCAL_ADDRESS = '127.0.0.1';
/** Consul's names for the default checks; the listening check is set by the proxy runtime. */
export const LISTENING_CHECK_NAME = 'Connect Sidecar Listening';
export const ALIAS_CHECK_PREFIX = 'Connect Sidecar Aliasing ';

export function sidecarID(serviceID: string): string {
  return serviceID + SIDECAR_SUFFIX;
}

/** Consul's check ids for the default checks: `:1` listening, `:2` aliasing. */
export function listeningCheckID(sidecar: string): string {
  return `service:${sidecar}:1`;
}

export function aliasCheckID(sidecar: string): string {
  return `service:${sidecar}:2`;
}

export interface SidecarPorts {
  /** Ports this agent's other services and proxy upstream listeners hold. */
  used: ReadonlySet<number>;
  /** The port this sidecar had (registered, or remembered across a restart). */
  previous?: number | undefined;
  /** The range ports are assigned from; default 21000-21255. */
  min?: number;
  max?: number;
}

/**
 * The port for a sidecar that names none: the one it had, while that is in the range and
 * free, so a re-registration or a restart does not move it; else the lowest free port of the
 * range. Undefined when every port is taken.
 */
export function pickSidecarPort(p: SidecarPorts): number | undefined {
  const min = p.min ?? SIDECAR_MIN_PORT;
  const max = p.max ?? SIDECAR_MAX_PORT;
  const prev = p.previous;
  if (prev !== undefined && prev >= min && prev <= max && !p.used.has(prev)) return prev;
  for (let port = min; port <= max; port++) if (!p.used.has(port)) return port;
  return undefined;
}

export interface ExpandedSidecar {
  /** The service as stored: without the SidecarService block, `Connect: {}` kept. */
  parent: ServiceRegistration;
  /** The sidecar's own registration: what the block set, Consul's defaults for the rest. */
  sidecar: ServiceRegistration;
  /** The checks the sidecar runs: its own, or the defaults when it defines none. */
  checks: CheckType[];
}

/**
 * Splits a registration that has `Connect.SidecarService` into the service and its sidecar;
 * undefined when there is no sidecar. Throws a 400 naming the field for a sidecar that cannot
 * be registered (no free port, an upstream listener on a taken address).
 */
export function expandSidecar(
  reg: ServiceRegistration,
  ports: SidecarPorts,
): ExpandedSidecar | undefined {
  const block = reg.Connect?.SidecarService;
  if (!block) return undefined;
  const path = 'Connect.SidecarService.';
  const parentID = reg.ID || reg.Name;
  const id = sidecarID(parentID);
  if (block.ID && block.ID !== id)
    throw badRequest(
      `${path}ID: a sidecar service cannot set its ID: the agent names it "${id}"`,
      `${path}ID`,
    );
  if (block.Kind && block.Kind !== 'connect-proxy')
    throw badRequest(`${path}Kind: a sidecar service is always a "connect-proxy"`, `${path}Kind`);

  const { SidecarService: _block, ...connect } = reg.Connect ?? {};
  const parent: ServiceRegistration = { ...reg, Connect: connect };

  const proxy: ConnectProxyConfig = {
    ...block.Proxy,
    DestinationServiceName: block.Proxy?.DestinationServiceName || reg.Name,
    DestinationServiceID: block.Proxy?.DestinationServiceID || parentID,
  };
  // Consul fills the application's address and port together, keeping whichever is given.
  if (!proxy.LocalServiceAddress || !proxy.LocalServicePort) {
    proxy.LocalServiceAddress ||= LOCAL_ADDRESS;
    if (!proxy.LocalServicePort) proxy.LocalServicePort = reg.Port ?? 0;
  }
  if (block.Proxy?.Upstreams) proxy.Upstreams = withUpstreamDefaults(block.Proxy.Upstreams);

  let port = block.Port ?? 0;
  if (port === 0) {
    // Never hand out the parent's port or a port this sidecar listens on for an upstream.
    const used = new Set(ports.used);
    if (reg.Port) used.add(reg.Port);
    for (const u of proxy.Upstreams ?? []) if (u.LocalBindPort) used.add(u.LocalBindPort);
    const picked = pickSidecarPort({ ...ports, used });
    if (picked === undefined)
      throw badRequest(
        `${path}Port: no port given for the sidecar service and none is left in the range ` +
          `[${ports.min ?? SIDECAR_MIN_PORT}, ${ports.max ?? SIDECAR_MAX_PORT}]; set one`,
        `${path}Port`,
      );
    port = picked;
  }

  const { Check, Checks, Connect: _nested, ...rest } = block;
  const sidecar: ServiceRegistration = {
    ...rest,
    Kind: 'connect-proxy',
    ID: id,
    Name: block.Name || reg.Name + SIDECAR_SUFFIX,
    // Consul copies tags and meta only when the block sets none, and the address when unset.
    Tags: block.Tags?.length ? block.Tags : [...(reg.Tags ?? [])],
    Meta: block.Meta && Object.keys(block.Meta).length > 0 ? block.Meta : { ...reg.Meta },
    Address: block.Address || reg.Address || '',
    Port: port,
    Proxy: proxy,
  };
  if (Check) sidecar.Check = Check;
  if (Checks) sidecar.Checks = Checks;
  validateProxy(sidecar, path);
  return { parent, sidecar, checks: sidecarChecks(sidecar, parentID) };
}

/** The checks a sidecar runs: those it defines, else Consul's default aliasing check. */
export function sidecarChecks(sidecar: ServiceRegistration, parentID: string): CheckType[] {
  const own = [...(sidecar.Check ? [sidecar.Check] : []), ...(sidecar.Checks ?? [])];
  if (own.length > 0) return own;
  return defaultSidecarChecks(sidecar.ID || sidecar.Name, parentID);
}

/**
 * Consul's defaults are a TCP check that the proxy listens and an alias of the parent. The
 * listening check is the proxy runtime's to report (LocalState.setSidecarListening), so only
 * the alias is registered here; it keeps Consul's id for the second default check.
 */
export function defaultSidecarChecks(sidecar: string, parentID: string): CheckType[] {
  return [
    {
      CheckID: aliasCheckID(sidecar),
      Name: ALIAS_CHECK_PREFIX + parentID,
      AliasService: parentID,
    },
  ];
}

/** Consul's upstream defaults: destination type "service", listener on 127.0.0.1. */
export function withUpstreamDefaults(upstreams: readonly Upstream[]): Upstream[] {
  return upstreams.map((u) => ({
    ...u,
    DestinationType: u.DestinationType || 'service',
    LocalBindAddress: u.LocalBindAddress || LOCAL_ADDRESS,
  }));
}

/**
 * What the agent requires of a connect-proxy it runs (Consul's ValidateForAgent): each
 * upstream names its destination and a listener port 1-65535; no two upstreams share a
 * destination or a listener address and port, and none listens on the proxy's own port.
 * `path` prefixes the field names in errors ("Connect.SidecarService." for a sidecar).
 */
export function validateProxy(svc: ServiceRegistration, path = ''): void {
  if (svc.Kind !== 'connect-proxy') return;
  const p = `${path}Proxy.`;
  if (!svc.Proxy?.DestinationServiceName)
    throw badRequest(
      `${p}DestinationServiceName: required for a connect-proxy`,
      `${p}DestinationServiceName`,
    );
  const listeners = new Map<string, number>();
  const destinations = new Map<string, number>();
  (svc.Proxy.Upstreams ?? []).forEach((u, i) => {
    const at = `${p}Upstreams[${i}].`;
    if (!u.DestinationName)
      throw badRequest(`${at}DestinationName: missing (required)`, `${at}DestinationName`);
    const port = u.LocalBindPort ?? 0;
    if (port < 1 || port > 65535)
      throw badRequest(
        `${at}LocalBindPort: ${port === 0 ? 'missing (required)' : `${port} is out of range`}: ` +
          'the local port the upstream listens on, 1-65535',
        `${at}LocalBindPort`,
      );
    if (svc.Port && port === svc.Port)
      throw badRequest(
        `${at}LocalBindPort: ${port} is the proxy's own port; choose another`,
        `${at}LocalBindPort`,
      );
    const addr = `${u.LocalBindAddress || LOCAL_ADDRESS}:${port}`;
    const first = listeners.get(addr);
    if (first !== undefined)
      throw badRequest(
        `${at}LocalBindPort: ${addr} is already the listener of Upstreams[${first}]`,
        `${at}LocalBindPort`,
      );
    listeners.set(addr, i);
    const dest = [u.DestinationType || 'service', u.DestinationName, u.Datacenter ?? ''].join('/');
    const same = destinations.get(dest);
    if (same !== undefined)
      throw badRequest(
        `${at}DestinationName: "${u.DestinationName}" is already Upstreams[${same}]` +
          (u.Datacenter ? ` in datacenter "${u.Datacenter}"` : ''),
        `${at}DestinationName`,
      );
    destinations.set(dest, i);
  });
}

/** A listener the agent opens for a proxy: its inbound port or one upstream's local port. */
export interface ProxyListener {
  address: string;
  port: number;
  /** The registration field that sets it (relative to the service). */
  field: string;
  /** What it is, for messages: `the inbound listener` or `the upstream listener for "api"`. */
  what: string;
}

/** The listeners the agent's proxy for `svc` opens (none unless it is a connect-proxy). */
export function proxyListeners(svc: {
  Kind?: string | undefined;
  Port?: number | undefined;
  Address?: string | undefined;
  Proxy?: ConnectProxyConfig | undefined;
}): ProxyListener[] {
  if (svc.Kind !== 'connect-proxy') return [];
  const out: ProxyListener[] = [];
  // As proxycfg binds them: the inbound on the service address or every interface, upstreams
  // on 127.0.0.1 unless told otherwise.
  if (svc.Port)
    out.push({
      address: svc.Address || '0.0.0.0',
      port: svc.Port,
      field: 'Port',
      what: 'the inbound listener',
    });
  (svc.Proxy?.Upstreams ?? []).forEach((u, i) => {
    if (!u.LocalBindPort) return;
    out.push({
      address: u.LocalBindAddress || LOCAL_ADDRESS,
      port: u.LocalBindPort,
      field: `Proxy.Upstreams[${i}].LocalBindPort`,
      what: `the upstream listener for "${u.DestinationName}"`,
    });
  });
  return out;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/** Two listeners collide when they share a port and an address (a wildcard covers all). */
function overlaps(
  a: Pick<ProxyListener, 'address' | 'port'>,
  b: Pick<ProxyListener, 'address' | 'port'>,
): boolean {
  if (a.port !== b.port) return false;
  return a.address === b.address || WILDCARDS.has(a.address) || WILDCARDS.has(b.address);
}

/** A listener of the agent itself (its HTTP API, DNS, metrics): no proxy may take its port. */
export interface ReservedListener {
  address: string;
  port: number;
  /** For messages: `the agent's HTTP API`. */
  what: string;
}

/**
 * Refuses (400, naming both) a proxy registration whose listeners collide with each other's,
 * with those of another proxy of this agent, or with the agent's own listeners (`reserved`):
 * both would fail to serve. `others` are the agent's other services (not the ones this
 * registration replaces); `path` prefixes fields.
 */
export function checkListenerClash(
  svc: Parameters<typeof proxyListeners>[0],
  others: Iterable<{ id: string; svc: Parameters<typeof proxyListeners>[0] }>,
  path = '',
  reserved: Iterable<ReservedListener> = [],
): void {
  const mine = proxyListeners(svc);
  // Within one proxy: the inbound against its upstreams (upstreams among themselves are
  // checked by validateProxy).
  const inbound = mine.find((l) => l.field === 'Port');
  for (const l of mine) {
    if (inbound && l !== inbound && overlaps(l, inbound))
      throw badRequest(
        `${path}${l.field}: ${l.address}:${l.port} is also this proxy's inbound listener (${inbound.address}:${inbound.port}); choose another port`,
        path + l.field,
      );
  }
  for (const r of reserved) {
    const clash = mine.find((l) => overlaps(l, r));
    if (clash)
      throw badRequest(
        `${path}${clash.field}: port ${clash.port} on ${clash.address} is already ${r.what} ` +
          `(${r.address}:${r.port}) on this agent; choose another port`,
        path + clash.field,
      );
  }
  for (const o of others) {
    for (const theirs of proxyListeners(o.svc)) {
      const clash = mine.find((l) => overlaps(l, theirs));
      if (clash)
        throw badRequest(
          `${path}${clash.field}: port ${clash.port} on ${clash.address} is already ${theirs.what} ` +
            `of proxy "${o.id}" (${theirs.address}:${theirs.port}) on this agent; choose another port`,
          path + clash.field,
        );
    }
  }
}
