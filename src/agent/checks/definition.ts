/**
 * Validates a CheckType and works out how to run it: its kind, interval, timeout, TTL and
 * thresholds. Bad definitions are user errors naming the field at fault.
 */
import { badRequest, parseDuration } from '../../core/index.js';
import type { CheckType } from '../../api/index.js';
import type { CheckKind } from './types.js';
import { DEFAULT_TIMEOUT_MS, outputMax, parseHostPort } from './util.js';
import { parseGrpcTarget } from './grpc.js';

/** Consul clamps intervals below one second up to it. */
export const DEFAULT_MIN_INTERVAL_MS = 1000;

export interface Thresholds {
  successBeforePassing: number;
  failuresBeforeWarning: number;
  failuresBeforeCritical: number;
}

export interface CheckPlan {
  kind: CheckKind;
  /** 0 for TTL checks. */
  intervalMs: number;
  /** Per-run timeout: Timeout or 10s, never more than the interval. 0 for TTL checks. */
  timeoutMs: number;
  /** 0 unless a TTL check. */
  ttlMs: number;
  outputMaxSize: number;
  thresholds: Thresholds;
}

export function checkKind(def: CheckType): CheckKind {
  const given: CheckKind[] = [];
  if (def.ScriptArgs && def.ScriptArgs.length > 0) given.push('script');
  if (def.HTTP) given.push('http');
  if (def.TCP) given.push('tcp');
  if (def.GRPC) given.push('grpc');
  if (def.TTL) given.push('ttl');
  if (def.AliasService) given.push('alias');
  if (given.length === 1) return given[0]!;
  const found = given.length === 0 ? 'none was given' : `got ${given.join(', ')}`;
  throw badRequest(`A check needs exactly one of ScriptArgs, HTTP, TCP, GRPC or TTL; ${found}`);
}

function duration(def: CheckType, field: 'Interval' | 'Timeout' | 'TTL'): number | undefined {
  const text = def[field];
  if (text === undefined || text === '') return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms < 0) {
    throw badRequest(`${field} "${text}" is not a duration such as "10s" or "500ms"`, field);
  }
  return ms;
}

function count(def: CheckType, field: keyof CheckType & `${string}Before${string}`): number {
  const n = def[field] ?? 0;
  if (!Number.isInteger(n) || n < 0)
    throw badRequest(`${field} must be a whole number >= 0`, field);
  return n;
}

function checkTarget(def: CheckType, kind: CheckKind): void {
  if (kind === 'http') {
    let url: URL | undefined;
    try {
      url = new URL(def.HTTP!);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw badRequest(`HTTP "${def.HTTP}" is not an http:// or https:// URL`, 'HTTP');
    }
  } else if (kind === 'tcp' && !parseHostPort(def.TCP!)) {
    throw badRequest(`TCP "${def.TCP}" is not a host:port address`, 'TCP');
  } else if (kind === 'grpc' && !parseGrpcTarget(def.GRPC!)) {
    throw badRequest(`GRPC "${def.GRPC}" is not a host:port or host:port/service address`, 'GRPC');
  }
}

export function planCheck(def: CheckType, minIntervalMs = DEFAULT_MIN_INTERVAL_MS): CheckPlan {
  const kind = checkKind(def);
  checkTarget(def, kind);
  const failuresBeforeCritical = count(def, 'FailuresBeforeCritical');
  const thresholds: Thresholds = {
    successBeforePassing: count(def, 'SuccessBeforePassing'),
    failuresBeforeCritical,
    // Consul: warning defaults to the critical threshold, i.e. no separate warning stage
    failuresBeforeWarning:
      def.FailuresBeforeWarning === undefined
        ? failuresBeforeCritical
        : count(def, 'FailuresBeforeWarning'),
  };
  const outputMaxSize = outputMax(def.OutputMaxSize);
  if (kind === 'alias')
    return { kind, intervalMs: 0, timeoutMs: 0, ttlMs: 0, outputMaxSize, thresholds };
  if (kind === 'ttl') {
    const ttlMs = duration(def, 'TTL');
    if (!ttlMs) throw badRequest('TTL must be a duration > 0', 'TTL');
    return { kind, intervalMs: 0, timeoutMs: 0, ttlMs, outputMaxSize, thresholds };
  }
  const interval = duration(def, 'Interval');
  if (!interval) {
    throw badRequest(`Interval must be a duration > 0 for ${kind} checks`, 'Interval');
  }
  const intervalMs = Math.max(interval, minIntervalMs);
  const timeoutMs = Math.min(duration(def, 'Timeout') || DEFAULT_TIMEOUT_MS, intervalMs);
  return { kind, intervalMs, timeoutMs, ttlMs: 0, outputMaxSize, thresholds };
}
