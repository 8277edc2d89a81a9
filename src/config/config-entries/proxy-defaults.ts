/** proxy-defaults: the "global" settings of every proxy. */
import { isObject } from '../../api/normalize.js';
import { normalizeKey } from '../../core/suggest.js';
import {
  ENTERPRISE,
  ENVOY_ONLY,
  err,
  fieldPath,
  Fields,
  prune,
  quoteList,
  type Shape,
  userMap,
} from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  expose,
  header,
  meshGateway,
  mutualTLSMode,
  proxyMode,
  transparentProxy,
} from './shared.js';
import {
  type AccessLogsConfig,
  type Protocol,
  PROTOCOLS,
  type ProxyDefaultsEntry,
} from './types.js';

export const ACCESS_LOGS_SHAPE: Shape = {
  fields: ['Enabled', 'DisableListenerLogs', 'Type', 'Path', 'JSONFormat', 'TextFormat'],
};

export function accessLogs(f: Fields): AccessLogsConfig | undefined {
  const a = f.obj('AccessLogs', ACCESS_LOGS_SHAPE);
  if (!a) return undefined;
  const type = a.oneOf<'stdout' | 'stderr' | 'file'>('Type', ['stdout', 'stderr', 'file']);
  const path = a.str('Path');
  if (type === 'file' && path === undefined) throw a.err('Path', 'required when Type is "file"');
  if (type !== 'file' && path !== undefined)
    throw a.err('Path', 'only allowed when Type is "file"');
  const json = a.str('JSONFormat');
  const text = a.str('TextFormat');
  if (json !== undefined && text !== undefined)
    throw err(a.path, 'JSONFormat and TextFormat are mutually exclusive');
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw a.err('JSONFormat', 'must be a JSON object of log fields');
    }
    if (!isObject(parsed)) throw a.err('JSONFormat', 'must be a JSON object of log fields');
  }
  return prune({
    Enabled: a.bool('Enabled'),
    DisableListenerLogs: a.bool('DisableListenerLogs'),
    Type: type,
    Path: path,
    JSONFormat: json,
    TextFormat: text,
  });
}

/** The protocol in proxy Config; keys are matched as Consul's weak decoding does. */
export function configProtocol(config: Record<string, unknown> | undefined): Protocol | undefined {
  for (const [k, v] of Object.entries(config ?? {})) {
    if (normalizeKey(k) !== 'protocol' || typeof v !== 'string') continue;
    const p = v.toLowerCase();
    if ((PROTOCOLS as readonly string[]).includes(p)) return p as Protocol;
  }
  return undefined;
}

export const PROXY_DEFAULTS_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'Mode',
    'TransparentProxy',
    'MutualTLSMode',
    'Config',
    'MeshGateway',
    'Expose',
    'AccessLogs',
  ],
  unsupported: {
    EnvoyExtensions: ENVOY_ONLY,
    FailoverPolicy: ENTERPRISE,
    PrioritizeByLocality: ENTERPRISE,
  },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function proxyDefaults(f: Fields): ProxyDefaultsEntry {
  let config: Record<string, unknown> | undefined;
  const pairs = f.entries('Config');
  if (pairs) {
    for (const [k, v] of pairs) {
      if (normalizeKey(k) !== 'protocol' || v === null || v === '') continue;
      const at = fieldPath(f.at('Config'), k);
      if (typeof v !== 'string') throw err(at, 'must be a string');
      if (!(PROTOCOLS as readonly string[]).includes(v.toLowerCase()))
        throw err(at, `must be ${quoteList(PROTOCOLS)}, not ${JSON.stringify(v)}`);
    }
    config = pairs.length ? userMap(pairs) : undefined;
  }
  return prune({
    ...header(f, 'proxy-defaults'),
    Mode: proxyMode(f),
    TransparentProxy: transparentProxy(f),
    MutualTLSMode: mutualTLSMode(f),
    Config: config,
    MeshGateway: meshGateway(f),
    Expose: expose(f),
    AccessLogs: accessLogs(f),
  });
}
