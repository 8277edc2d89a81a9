/**
 * PUT /v1/connect/ca/configuration bodies: Consul's shape, checked field by field. Trellis runs
 * only the built-in ("consul") provider with EC P-256 keys; a leaf may live from 10 seconds to
 * a year (Consul's floor is an hour; short-lived leaves are a feature here, and the short end
 * lets tests watch renewals happen).
 */
import { canonicalize, isObject } from '../../api/index.js';
import { badRequest, parseDuration } from '../../core/index.js';
import type { CaConfig } from '../state/ca-table.js';

const CONFIG_FIELDS = [
  'LeafCertTTL',
  'IntermediateCertTTL',
  'RootCertTTL',
  'RotationPeriod',
  'PrivateKeyType',
  'PrivateKeyBits',
  'CSRMaxPerSecond',
  'CSRMaxConcurrent',
  'PrivateKey',
  'RootCert',
  'IntermediatePEM',
];

const MIN = 60_000;
const HOUR = 3600_000;

export interface CaConfigUpdate {
  config: CaConfig;
  /** An operator-supplied root to rotate to. */
  imported?: { keyPem: string; certPem: string };
  forceWithoutCrossSigning: boolean;
}

function durationField(
  o: Record<string, unknown>,
  k: string,
  current: string,
  min: number,
  max: number,
  allowZero = false,
): string {
  const v = o[k];
  if (v === undefined || v === null || v === '') return current;
  if (typeof v !== 'string')
    throw badRequest(`Config.${k}: must be a duration such as "72h"`, `Config.${k}`);
  const ms = parseDuration(v);
  if (ms === undefined)
    throw badRequest(`Config.${k}: "${v.slice(0, 40)}" is not a duration`, `Config.${k}`);
  if (allowZero && ms === 0) return v;
  if (ms < min || ms > max)
    throw badRequest(
      `Config.${k}: must be between ${fmt(min)} and ${fmt(max)}${allowZero ? ' (or 0s for never)' : ''}`,
      `Config.${k}`,
    );
  return v;
}

function fmt(ms: number): string {
  if (ms % HOUR === 0) return `${ms / HOUR}h`;
  return ms % MIN === 0 ? `${ms / MIN}m` : `${ms / 1000}s`;
}

function count(o: Record<string, unknown>, k: string, current: number): number {
  const v = o[k];
  if (v === undefined || v === null) return current;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000)
    throw badRequest(`Config.${k}: must be an integer between 0 and 1000000`, `Config.${k}`);
  return v;
}

export function caConfigUpdate(raw: unknown, current: CaConfig): CaConfigUpdate {
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const top = canonicalize(raw, ['Provider', 'Config', 'ForceWithoutCrossSigning', 'State']);
  const provider = top.Provider ?? 'consul';
  if (provider !== 'consul')
    throw badRequest(
      `Provider: "${String(provider).slice(0, 40)}" is not supported; Trellis runs its built-in CA ("consul")`,
      'Provider',
    );
  const cfgRaw = top.Config ?? {};
  if (!isObject(cfgRaw)) throw badRequest('Config: must be an object', 'Config');
  const c = canonicalize(cfgRaw, CONFIG_FIELDS, 'Config.');
  if (c.PrivateKeyType !== undefined && c.PrivateKeyType !== 'ec')
    throw badRequest(
      'Config.PrivateKeyType: only "ec" (P-256) is supported',
      'Config.PrivateKeyType',
    );
  if (c.PrivateKeyBits !== undefined && c.PrivateKeyBits !== 256)
    throw badRequest('Config.PrivateKeyBits: only 256 is supported', 'Config.PrivateKeyBits');
  if (c.IntermediatePEM)
    throw badRequest('Config.IntermediatePEM: not supported', 'Config.IntermediatePEM');
  const leaf = durationField(c, 'LeafCertTTL', current.LeafCertTTL, 10_000, 8760 * HOUR);
  const root = durationField(c, 'RootCertTTL', current.RootCertTTL, HOUR, 100 * 8760 * HOUR);
  const inter = durationField(
    c,
    'IntermediateCertTTL',
    current.IntermediateCertTTL,
    3 * HOUR,
    100 * 8760 * HOUR,
  );
  const rotation = durationField(
    c,
    'RotationPeriod',
    current.RotationPeriod,
    HOUR,
    100 * 8760 * HOUR,
    true,
  );
  if ((parseDuration(leaf) ?? 0) * 2 > (parseDuration(root) ?? 0))
    throw badRequest(
      'Config.LeafCertTTL: must be at most half of RootCertTTL',
      'Config.LeafCertTTL',
    );
  const keyPem = typeof c.PrivateKey === 'string' ? c.PrivateKey : '';
  const certPem = typeof c.RootCert === 'string' ? c.RootCert : '';
  if (Boolean(keyPem) !== Boolean(certPem))
    throw badRequest(
      'Config.PrivateKey and Config.RootCert: give both to rotate to your own root',
      'Config.RootCert',
    );
  const force = top.ForceWithoutCrossSigning;
  if (force !== undefined && typeof force !== 'boolean')
    throw badRequest('ForceWithoutCrossSigning: must be true or false', 'ForceWithoutCrossSigning');
  return {
    config: {
      LeafCertTTL: leaf,
      IntermediateCertTTL: inter,
      RootCertTTL: root,
      RotationPeriod: rotation,
      PrivateKeyType: 'ec',
      PrivateKeyBits: 256,
      CSRMaxPerSecond: count(c, 'CSRMaxPerSecond', current.CSRMaxPerSecond),
      CSRMaxConcurrent: count(c, 'CSRMaxConcurrent', current.CSRMaxConcurrent),
    },
    ...(keyPem ? { imported: { keyPem, certPem } } : {}),
    forceWithoutCrossSigning: force === true,
  };
}
