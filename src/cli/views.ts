/**
 * Table views of API results shared by several commands, and the table-or-JSON switch.
 */
import {
  NODE_MAINT_CHECK_ID,
  SERVICE_MAINT_PREFIX,
  type HealthCheck,
  type KVPair,
  type Member,
  type ServiceEntry,
} from '../api/index.js';
import { decodeValue } from '../client/index.js';
import type { CommandEnv } from './context.js';
import { formatJson, formatTable } from './output.js';

/** Prints `value` as JSON with --format json, else the table `render` makes. */
export function show(env: CommandEnv, value: unknown, render: () => string): void {
  env.io.stdout(env.format === 'json' ? formatJson(value) : render());
}

/** One status for a set of checks: maintenance, else the worst of them. */
export function aggregateStatus(checks: readonly HealthCheck[]): string {
  if (
    checks.some(
      (c) => c.CheckID === NODE_MAINT_CHECK_ID || c.CheckID.startsWith(SERVICE_MAINT_PREFIX),
    )
  ) {
    return 'maintenance';
  }
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

export function serviceEntriesTable(entries: readonly ServiceEntry[]): string {
  return formatTable(
    ['Node', 'ServiceID', 'Address', 'Port', 'Status', 'Tags'],
    entries.map((e) => [
      e.Node.Node,
      e.Service.ID,
      e.Service.Address || e.Node.Address,
      String(e.Service.Port),
      aggregateStatus(e.Checks),
      (e.Service.Tags ?? []).join(','),
    ]),
  );
}

export function checksTable(checks: readonly HealthCheck[]): string {
  return formatTable(
    ['Node', 'CheckID', 'Name', 'Status', 'Service', 'Output'],
    checks.map((c) => [
      c.Node,
      c.CheckID,
      c.Name,
      c.Status,
      c.ServiceName,
      firstLine(c.Output ?? ''),
    ]),
  );
}

const MEMBER_STATUS: Record<number, string> = {
  0: 'none',
  1: 'alive',
  2: 'leaving',
  3: 'left',
  4: 'failed',
};

export function membersTable(members: readonly Member[]): string {
  return formatTable(
    ['Node', 'Address', 'Status', 'Type', 'Build', 'DC'],
    members.map((m) => [
      m.Name,
      `${m.Addr}:${m.Port}`,
      MEMBER_STATUS[m.Status] ?? String(m.Status),
      m.Tags.role === 'consul' ? 'server' : 'client',
      m.Tags.build ?? '',
      m.Tags.dc ?? '',
    ]),
  );
}

/** A KV value as text, or its base64 form as stored on the wire. */
export function kvValueText(pair: KVPair, base64: boolean): string {
  return base64 ? (pair.Value ?? '') : decodeValue(pair).toString('utf8');
}

/** `key:value` lines, as `kv get -recurse` prints them. */
export function kvLines(pairs: readonly KVPair[], base64: boolean): string {
  return pairs.map((p) => `${p.Key}:${kvValueText(p, base64)}\n`).join('');
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.trim();
}
