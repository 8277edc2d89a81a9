/** The entry point: which kind a body is, and its normalized form. */
import { isObject } from '../../api/normalize.js';
import { closest, normalizeKey } from '../../core/suggest.js';
import { err, Fields, type Obj } from './fields.js';
import { PROXY_DEFAULTS_SHAPE, proxyDefaults } from './proxy-defaults.js';
import { SERVICE_DEFAULTS_SHAPE, serviceDefaults } from './service-defaults.js';
import { SERVICE_INTENTIONS_SHAPE, serviceIntentions } from './service-intentions.js';
import { SERVICE_RESOLVER_SHAPE, serviceResolver } from './service-resolver.js';
import { SERVICE_ROUTER_SHAPE, serviceRouter } from './service-router.js';
import { SERVICE_SPLITTER_SHAPE, serviceSplitter } from './service-splitter.js';
import { CONFIG_ENTRY_KINDS, type ConfigEntry, type ConfigEntryKind } from './types.js';

/** Kinds Consul has that Trellis does not serve (gateways, peering, Enterprise). */
export const OTHER_CONSUL_KINDS = [
  'mesh',
  'ingress-gateway',
  'terminating-gateway',
  'exported-services',
  'api-gateway',
  'bound-api-gateway',
  'http-route',
  'tcp-route',
  'inline-certificate',
  'file-system-certificate',
  'jwt-provider',
  'sameness-group',
  'control-plane-request-limit',
  'partition-exports',
];

export function entryKind(body: Obj): ConfigEntryKind {
  const kinds = Object.entries(body).filter(([k]) => normalizeKey(k) === 'kind');
  if (kinds.length > 1)
    throw err('Kind', `set twice, as "${kinds[0]![0]}" and as "${kinds[1]![0]}"`);
  const raw = kinds[0]?.[1];
  const valid = `valid kinds: ${CONFIG_ENTRY_KINDS.join(', ')}`;
  if (raw === undefined || raw === null || raw === '')
    throw err('Kind', `missing (required); ${valid}`);
  if (typeof raw !== 'string') throw err('Kind', `must be a string; ${valid}`);
  const kind = raw.toLowerCase();
  if ((CONFIG_ENTRY_KINDS as readonly string[]).includes(kind)) return kind as ConfigEntryKind;
  if (OTHER_CONSUL_KINDS.includes(kind))
    throw err('Kind', `config entry kind "${kind}" is not supported by Trellis; ${valid}`);
  const hint = closest(raw, CONFIG_ENTRY_KINDS);
  throw err(
    'Kind',
    `unknown config entry kind ${JSON.stringify(raw.slice(0, 64))}; ${hint ? `did you mean "${hint}"? ` : ''}${valid}`,
  );
}

/**
 * Validates a config entry body (parsed JSON, or a file's plain value) and returns it in
 * canonical form: CamelCase keys, only set fields, protocols lower-cased, Type "consul" on
 * intention sources. Read-only fields (CreateIndex, ModifyIndex, Precedence) are dropped.
 * Throws a 400 MeshError naming the field.
 */
export function normalizeConfigEntry(body: unknown): ConfigEntry {
  if (!isObject(body)) throw err('', 'config entry must be a JSON object with Kind and Name');
  const kind = entryKind(body);
  switch (kind) {
    case 'service-defaults':
      return serviceDefaults(Fields.of(body, '', SERVICE_DEFAULTS_SHAPE));
    case 'proxy-defaults':
      return proxyDefaults(Fields.of(body, '', PROXY_DEFAULTS_SHAPE));
    case 'service-router':
      return serviceRouter(Fields.of(body, '', SERVICE_ROUTER_SHAPE));
    case 'service-splitter':
      return serviceSplitter(Fields.of(body, '', SERVICE_SPLITTER_SHAPE));
    case 'service-resolver':
      return serviceResolver(Fields.of(body, '', SERVICE_RESOLVER_SHAPE));
    case 'service-intentions':
      return serviceIntentions(Fields.of(body, '', SERVICE_INTENTIONS_SHAPE));
  }
}
