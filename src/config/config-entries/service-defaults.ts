/** service-defaults: a service's protocol, proxy mode and upstream settings. */
import {
  ENTERPRISE,
  ENVOY_ONLY,
  Fields,
  indexPath,
  NO_PEERING,
  prune,
  type Shape,
} from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  expose,
  header,
  meshGateway,
  mutualTLSMode,
  protocol,
  proxyMode,
  serviceName,
  transparentProxy,
} from './shared.js';
import type { ServiceDefaultsEntry, UpstreamConfiguration, UpstreamSettings } from './types.js';

export const UPSTREAM_SHAPE: Shape = {
  fields: [
    'Name',
    'Protocol',
    'ConnectTimeoutMs',
    'Limits',
    'PassiveHealthCheck',
    'MeshGateway',
    'BalanceOutboundConnections',
  ],
  unsupported: {
    Peer: NO_PEERING,
    EnvoyListenerJSON: ENVOY_ONLY,
    EnvoyClusterJSON: ENVOY_ONLY,
  },
  tenancy: true,
};

export const LIMITS_SHAPE: Shape = {
  fields: ['MaxConnections', 'MaxPendingRequests', 'MaxConcurrentRequests'],
};

export const PASSIVE_HEALTH_SHAPE: Shape = {
  fields: [
    'Interval',
    'MaxFailures',
    'EnforcingConsecutive5xx',
    'MaxEjectionPercent',
    'BaseEjectionTime',
  ],
};

export function upstreamSettings(u: Fields, isOverride: boolean): UpstreamSettings {
  let name: string | undefined;
  if (isOverride) name = serviceName(u, 'Name', { required: true });
  else if (u.str('Name') !== undefined)
    throw u.err('Name', 'not allowed in Defaults, which apply to every upstream');
  const l = u.obj('Limits', LIMITS_SHAPE);
  const limits = l
    ? prune({
        MaxConnections: l.int('MaxConnections'),
        MaxPendingRequests: l.int('MaxPendingRequests'),
        MaxConcurrentRequests: l.int('MaxConcurrentRequests'),
      })
    : undefined;
  const h = u.obj('PassiveHealthCheck', PASSIVE_HEALTH_SHAPE);
  const passive = h
    ? prune({
        Interval: h.duration('Interval'),
        MaxFailures: h.int('MaxFailures'),
        EnforcingConsecutive5xx: h.int('EnforcingConsecutive5xx', 0, 100),
        MaxEjectionPercent: h.int('MaxEjectionPercent', 0, 100),
        BaseEjectionTime: h.duration('BaseEjectionTime'),
      })
    : undefined;
  return prune({
    Name: name,
    Protocol: protocol(u, 'Protocol'),
    ConnectTimeoutMs: u.int('ConnectTimeoutMs'),
    Limits: limits,
    PassiveHealthCheck: passive,
    MeshGateway: meshGateway(u),
    BalanceOutboundConnections: u.oneOf<'exact_balance'>('BalanceOutboundConnections', [
      'exact_balance',
    ]),
  });
}

export function upstreamConfig(f: Fields): UpstreamConfiguration | undefined {
  const c = f.obj('UpstreamConfig', { fields: ['Defaults', 'Overrides'] });
  if (!c) return undefined;
  const d = c.obj('Defaults', UPSTREAM_SHAPE);
  const seen = new Map<string, number>();
  const overrides = c.list('Overrides')?.map((raw, i) => {
    const u = Fields.of(raw, indexPath(c.at('Overrides'), i), UPSTREAM_SHAPE);
    const s = upstreamSettings(u, true) as UpstreamSettings & { Name: string };
    const first = seen.get(s.Name);
    if (first !== undefined)
      throw u.err('Name', `"${s.Name}" is already overridden in Overrides[${first}]`);
    seen.set(s.Name, i);
    return s;
  });
  return prune({
    Defaults: d ? upstreamSettings(d, false) : undefined,
    Overrides: overrides?.length ? overrides : undefined,
  });
}

export const SERVICE_DEFAULTS_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'Protocol',
    'Mode',
    'TransparentProxy',
    'MutualTLSMode',
    'MeshGateway',
    'Expose',
    'UpstreamConfig',
    'MaxInboundConnections',
    'LocalConnectTimeoutMs',
    'LocalRequestTimeoutMs',
    'BalanceInboundConnections',
  ],
  unsupported: {
    EnvoyExtensions: ENVOY_ONLY,
    ExternalSNI: 'it applies to terminating gateways',
    Destination: 'it routes through terminating gateways',
    RateLimits: ENTERPRISE,
  },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function serviceDefaults(f: Fields): ServiceDefaultsEntry {
  return prune({
    ...header(f, 'service-defaults'),
    Protocol: protocol(f, 'Protocol'),
    Mode: proxyMode(f),
    TransparentProxy: transparentProxy(f),
    MutualTLSMode: mutualTLSMode(f),
    MeshGateway: meshGateway(f),
    Expose: expose(f),
    UpstreamConfig: upstreamConfig(f),
    MaxInboundConnections: f.int('MaxInboundConnections'),
    LocalConnectTimeoutMs: f.int('LocalConnectTimeoutMs'),
    LocalRequestTimeoutMs: f.int('LocalRequestTimeoutMs'),
    BalanceInboundConnections: f.oneOf<'exact_balance'>('BalanceInboundConnections', [
      'exact_balance',
    ]),
  });
}
