/** How intentions print: "web => api (allow)" lines, a detail view and a table. */
import type {
  Intention,
  IntentionCheckResult,
  IntentionHTTPHeaderPermission,
  IntentionPermission,
  IntentionUpsert,
} from '../../../api/index.js';
import { formatTable } from '../../output.js';

export function pairName(source: string, destination: string): string {
  return `${source} => ${destination}`;
}

/** "allow", "deny", or "2 permissions" for an L7 intention. */
export function actionText(i: Pick<IntentionUpsert, 'Action' | 'Permissions'>): string {
  if (i.Action) return i.Action;
  const n = i.Permissions?.length ?? 0;
  return `${n} permission${n === 1 ? '' : 's'}`;
}

/** Consul's one-line form: "web => api (allow)". */
export function intentionLine(i: Intention): string {
  return `${pairName(i.SourceName, i.DestinationName)} (${actionText(i)})`;
}

export function intentionTable(list: readonly Intention[]): string {
  return formatTable(
    ['Source', 'Action', 'Destination', 'Precedence', 'Description'],
    list.map((i) => [
      i.SourceName,
      actionText(i),
      i.DestinationName,
      String(i.Precedence ?? ''),
      i.Description ?? '',
    ]),
  );
}

/** The `intention get` view: one field a line, then the permissions numbered from 1. */
export function intentionText(i: Intention): string {
  const rows: [string, string][] = [
    ['Source', i.SourceName],
    ['Destination', i.DestinationName],
  ];
  if (i.Action) rows.push(['Action', i.Action]);
  if (i.ID) rows.push(['ID', i.ID]);
  if (i.SourceType) rows.push(['Source Type', i.SourceType]);
  if (i.Description) rows.push(['Description', i.Description]);
  rows.push(['Precedence', String(i.Precedence ?? '')]);
  if (i.CreatedAt) rows.push(['Created At', i.CreatedAt]);
  if (i.UpdatedAt) rows.push(['Updated At', i.UpdatedAt]);
  let out = rows.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}\n`).join('');
  if (i.Permissions?.length) {
    out += 'Permissions:\n';
    i.Permissions.forEach((p, n) => {
      out += `  ${n + 1}. ${permissionText(p)}\n`;
    });
  }
  return out;
}

/** `allow PathPrefix "/api" Methods GET,HEAD Header x-user Exact "a"`; "all requests" if bare. */
export function permissionText(p: IntentionPermission): string {
  const parts: string[] = [p.Action];
  const http = p.HTTP;
  if (http?.PathExact !== undefined) parts.push(`PathExact ${JSON.stringify(http.PathExact)}`);
  if (http?.PathPrefix !== undefined) parts.push(`PathPrefix ${JSON.stringify(http.PathPrefix)}`);
  if (http?.PathRegex !== undefined) parts.push(`PathRegex ${JSON.stringify(http.PathRegex)}`);
  if (http?.Methods?.length) parts.push(`Methods ${http.Methods.join(',')}`);
  for (const h of http?.Header ?? []) parts.push(`Header ${headerText(h)}`);
  if (p.JWT) parts.push('JWT');
  if (parts.length === 1) parts.push('all requests');
  return parts.join(' ');
}

function headerText(h: IntentionHTTPHeaderPermission): string {
  const how: string[] = [];
  if (h.Invert) how.push('not');
  if (h.Exact !== undefined) how.push(`Exact ${JSON.stringify(h.Exact)}`);
  else if (h.Prefix !== undefined) how.push(`Prefix ${JSON.stringify(h.Prefix)}`);
  else if (h.Suffix !== undefined) how.push(`Suffix ${JSON.stringify(h.Suffix)}`);
  else if (h.Contains !== undefined) how.push(`Contains ${JSON.stringify(h.Contains)}`);
  else if (h.Regex !== undefined) how.push(`Regex ${JSON.stringify(h.Regex)}`);
  else how.push('Present');
  if (h.IgnoreCase) how.push('(ignoring case)');
  return `${h.Name} ${how.join(' ')}`;
}

/**
 * What decided a check, from the structured fields Trellis sends; the server's Reason when
 * they do not say; undefined for a server that sends only Allowed (Consul).
 */
export function decisionText(
  r: IntentionCheckResult,
  source: string,
  destination: string,
): string | undefined {
  const policy = (allowed: boolean) => `the default policy (${allowed ? 'allow' : 'deny'})`;
  const ixn = r.Intention ?? undefined;
  if (ixn) {
    const name = pairName(ixn.SourceName, ixn.DestinationName);
    const perm = r.Permission ? ixn.Permissions?.[r.Permission - 1] : undefined;
    if (r.Permission && !r.Default) {
      const action = perm?.Action ?? (r.Allowed ? 'allow' : 'deny');
      return `intention ${name}, permission ${r.Permission} (${action})`;
    }
    if (r.Default) {
      return `${policy(r.Allowed)}: intention ${name} matched, but none of its permissions did`;
    }
    if (ixn.Action) return `intention ${name} (${ixn.Action})`;
    if (ixn.Permissions?.length && !r.Allowed) {
      return `intention ${name} (deny): it has L7 permissions, which deny plain connections; give --path to check an HTTP request`;
    }
    return r.Reason ? r.Reason : `intention ${name}`;
  }
  if (r.Default) {
    return `${policy(r.Allowed)}: no intention matches ${pairName(source, destination)}`;
  }
  return r.Reason || undefined;
}
