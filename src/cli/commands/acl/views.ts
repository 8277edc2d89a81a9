/**
 * How tokens and policies print: Consul's `consul acl` layouts (field names padded to one
 * column, policies as "ID - Name" lines), and tables for lists.
 */
import type {
  ACLLink,
  ACLPolicy,
  ACLPolicyListEntry,
  ACLToken,
  ACLTokenListEntry,
} from '../../../api/index.js';
import { formatTable } from '../../output.js';

/** `label:` padded so values line up, as Consul's formatter writes them. */
function line(label: string, value: string, width: number): string {
  return `${`${label}:`.padEnd(width)}${value}\n`;
}

/** Consul's `consul acl token read` layout. */
export function tokenText(token: ACLToken): string {
  const w = 18;
  let out = line('AccessorID', token.AccessorID, w);
  out += line('SecretID', token.SecretID, w);
  out += line('Description', token.Description ?? '', w);
  out += line('Local', String(token.Local ?? false), w);
  if (token.AuthMethod) out += line('Auth Method', token.AuthMethod, w);
  out += line('Create Time', token.CreateTime ?? '', w);
  if (token.ExpirationTime) out += line('Expiration Time', token.ExpirationTime, w);
  out += links('Policies', token.Policies);
  out += links('Roles', token.Roles);
  if (token.ServiceIdentities?.length) {
    out += 'Service Identities:\n';
    for (const s of token.ServiceIdentities) {
      const dcs = s.Datacenters?.length ? s.Datacenters.join(', ') : 'all';
      out += `   ${s.ServiceName} (Datacenters: ${dcs})\n`;
    }
  }
  if (token.NodeIdentities?.length) {
    out += 'Node Identities:\n';
    for (const n of token.NodeIdentities) out += `   ${n.NodeName} (Datacenter: ${n.Datacenter})\n`;
  }
  return out;
}

function links(title: string, list: readonly ACLLink[] | undefined): string {
  if (!list?.length) return '';
  return `${title}:\n${list.map((l) => `   ${l.ID ?? ''} - ${l.Name ?? ''}\n`).join('')}`;
}

/** Consul's `consul acl policy read` layout; the rules end the output. */
export function policyText(policy: ACLPolicy): string {
  const w = 14;
  let out = line('ID', policy.ID, w);
  out += line('Name', policy.Name, w);
  out += line('Description', policy.Description ?? '', w);
  out += line('Datacenters', (policy.Datacenters ?? []).join(', '), w);
  out += 'Rules:\n';
  const rules = policy.Rules ?? '';
  return out + (rules === '' || rules.endsWith('\n') ? rules : `${rules}\n`);
}

export function tokenTable(tokens: readonly ACLTokenListEntry[]): string {
  return formatTable(
    ['AccessorID', 'Description', 'Policies', 'Identities', 'Local', 'Expires'],
    tokens.map((t) => [
      t.AccessorID,
      t.Description ?? '',
      (t.Policies ?? []).map((p) => p.Name || p.ID || '').join(','),
      identities(t),
      String(t.Local ?? false),
      t.ExpirationTime ?? '',
    ]),
  );
}

function identities(t: ACLTokenListEntry): string {
  return [
    ...(t.ServiceIdentities ?? []).map((s) => `service:${s.ServiceName}`),
    ...(t.NodeIdentities ?? []).map((n) => `node:${n.NodeName}`),
  ].join(',');
}

export function policyTable(policies: readonly ACLPolicyListEntry[]): string {
  return formatTable(
    ['ID', 'Name', 'Description', 'Datacenters'],
    policies.map((p) => [p.ID, p.Name, p.Description ?? '', (p.Datacenters ?? []).join(',')]),
  );
}
