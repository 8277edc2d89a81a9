/**
 * ACL request bodies -> state rows, and state rows -> Consul's wire shapes. Secrets appear in an
 * answer only when the token was just made (the caller chose or received it).
 */
import { createHash } from 'node:crypto';
import { canonicalize, isObject, NAME_RE, optStr, str, strList, bool } from '../../api/index.js';
import { badRequest, parseDuration } from '../../core/index.js';
import { formatDiagnostic, parseAclRules } from '../../config/index.js';
import type { NodeIdentitySpec, ServiceIdentitySpec } from '../../policy/index.js';
import type { AclPolicyRow, AclTable, AclTokenRow } from '../state/acl-table.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const POLICY_NAME_RE = /^[A-Za-z0-9\-_]{1,128}$/;

const TOKEN_FIELDS = [
  'AccessorID',
  'SecretID',
  'ID',
  'Description',
  'Policies',
  'Roles',
  'ServiceIdentities',
  'NodeIdentities',
  'TemplatedPolicies',
  'Local',
  'ExpirationTime',
  'ExpirationTTL',
  'AuthMethod',
  'CreateTime',
  'Hash',
];

export interface TokenBody {
  AccessorID?: string;
  SecretID?: string;
  Description: string;
  Policies: string[];
  ServiceIdentities: ServiceIdentitySpec[];
  NodeIdentities: NodeIdentitySpec[];
  Local: boolean;
  ExpirationTime?: string;
}

function uuid(o: Record<string, unknown>, k: string): string | undefined {
  const v = optStr(o, k, '');
  if (v === undefined || v === '') return undefined;
  if (!UUID_RE.test(v)) throw badRequest(`${k}: must be a UUID`, k);
  return v.toLowerCase();
}

/** A token create/update body, with policy names resolved to ids. */
export function tokenBody(raw: unknown, acl: AclTable, now: number): TokenBody {
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const o = canonicalize(raw, TOKEN_FIELDS);
  for (const k of ['Roles', 'TemplatedPolicies'] as const) {
    if (Array.isArray(o[k]) && o[k].length > 0)
      throw badRequest(`${k}: not supported by Trellis; use Policies and identities`, k);
  }
  if (o.AuthMethod) throw badRequest('AuthMethod: not supported by Trellis', 'AuthMethod');
  const policies: string[] = [];
  const list = o.Policies ?? [];
  if (!Array.isArray(list)) throw badRequest('Policies: must be a list', 'Policies');
  list.forEach((p, i) => {
    const path = `Policies[${i}]`;
    if (!isObject(p)) throw badRequest(`${path}: must be an object with ID or Name`, path);
    const q = canonicalize(p, ['ID', 'Name'], `${path}.`);
    const id = str(q, 'ID', `${path}.`);
    const nm = str(q, 'Name', `${path}.`);
    const row = id ? acl.policies.get(id) : nm ? acl.policyByName(nm) : undefined;
    if (!id && !nm) throw badRequest(`${path}: set ID or Name`, path);
    if (!row)
      throw badRequest(`${path}: no policy ${id ? `with ID "${id}"` : `named "${nm}"`}`, path);
    if (!policies.includes(row.ID)) policies.push(row.ID);
  });
  const services = listOf(o.ServiceIdentities, 'ServiceIdentities', (s, path) => {
    const q = canonicalize(s, ['ServiceName', 'Datacenters'], `${path}.`);
    const nm = str(q, 'ServiceName', `${path}.`);
    if (!NAME_RE.test(nm))
      throw badRequest(
        `${path}.ServiceName: "${nm}" is not a valid service name`,
        `${path}.ServiceName`,
      );
    const dcs = strList(q, 'Datacenters', `${path}.`);
    return dcs.length ? { ServiceName: nm, Datacenters: dcs } : { ServiceName: nm };
  });
  const nodes = listOf(o.NodeIdentities, 'NodeIdentities', (s, path) => {
    const q = canonicalize(s, ['NodeName', 'Datacenter'], `${path}.`);
    const nm = str(q, 'NodeName', `${path}.`);
    const dc = str(q, 'Datacenter', `${path}.`);
    if (!NAME_RE.test(nm))
      throw badRequest(`${path}.NodeName: "${nm}" is not a valid node name`, `${path}.NodeName`);
    if (!dc) throw badRequest(`${path}.Datacenter: missing (required)`, `${path}.Datacenter`);
    return { NodeName: nm, Datacenter: dc };
  });
  let expiration = optStr(o, 'ExpirationTime', '') || undefined;
  if (expiration !== undefined) {
    const t = Date.parse(expiration);
    if (Number.isNaN(t))
      throw badRequest('ExpirationTime: must be an RFC 3339 time', 'ExpirationTime');
    if (t <= now) throw badRequest('ExpirationTime: is in the past', 'ExpirationTime');
    expiration = new Date(t).toISOString();
  }
  const ttlText = optStr(o, 'ExpirationTTL', '');
  if (ttlText) {
    if (expiration)
      throw badRequest(
        'ExpirationTTL: cannot be set together with ExpirationTime',
        'ExpirationTTL',
      );
    const ttl = parseDuration(ttlText);
    if (ttl === undefined || ttl < 60_000 || ttl > 24 * 3600_000 * 365)
      throw badRequest('ExpirationTTL: must be a duration between 1m and 8760h', 'ExpirationTTL');
    expiration = new Date(now + ttl).toISOString();
  }
  const accessor = uuid(o, 'AccessorID');
  const secret = uuid(o, 'SecretID') ?? uuid(o, 'ID');
  return {
    ...(accessor ? { AccessorID: accessor } : {}),
    ...(secret ? { SecretID: secret } : {}),
    Description: str(o, 'Description', ''),
    Policies: policies,
    ServiceIdentities: services,
    NodeIdentities: nodes,
    Local: bool(o, 'Local', ''),
    ...(expiration ? { ExpirationTime: expiration } : {}),
  };
}

function listOf<T>(
  v: unknown,
  field: string,
  each: (o: Record<string, unknown>, path: string) => T,
): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`${field}: must be a list`, field);
  return v.map((x, i) => {
    const path = `${field}[${i}]`;
    if (!isObject(x)) throw badRequest(`${path}: must be an object`, path);
    return each(x, path);
  });
}

export interface PolicyBody {
  ID?: string;
  Name: string;
  Description: string;
  Rules: string;
  Datacenters: string[];
}

/** A policy body; its Rules must parse, and every error is reported with its position. */
export function policyBody(raw: unknown): PolicyBody {
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const o = canonicalize(raw, ['ID', 'Name', 'Description', 'Rules', 'Datacenters', 'Hash']);
  const nm = str(o, 'Name', '');
  if (!POLICY_NAME_RE.test(nm))
    throw badRequest(
      nm
        ? `Name: "${nm.slice(0, 64)}" is invalid (letters, digits, - and _, at most 128)`
        : 'Name: missing (required)',
      'Name',
    );
  const rules = str(o, 'Rules', '');
  const parsed = parseAclRules(rules, 'Rules');
  if (parsed.errors.length > 0)
    throw badRequest(`Rules: invalid: ${parsed.errors.map(formatDiagnostic).join('; ')}`, 'Rules');
  const id = uuid(o, 'ID');
  return {
    ...(id ? { ID: id } : {}),
    Name: nm,
    Description: str(o, 'Description', ''),
    Rules: rules,
    Datacenters: strList(o, 'Datacenters', ''),
  };
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64');
}

/** A token as Consul shows it; `secret` only right after creation. */
export function tokenView(
  row: AclTokenRow,
  acl: AclTable,
  secret?: string,
): Record<string, unknown> {
  const policies = row.Policies.flatMap((id) => {
    const p = acl.policies.get(id);
    return p ? [{ ID: p.ID, Name: p.Name }] : [];
  });
  const body = {
    AccessorID: row.AccessorID,
    ...(secret !== undefined ? { SecretID: secret } : {}),
    Description: row.Description,
    Policies: policies,
    ...(row.ServiceIdentities.length ? { ServiceIdentities: row.ServiceIdentities } : {}),
    ...(row.NodeIdentities.length ? { NodeIdentities: row.NodeIdentities } : {}),
    Local: row.Local,
    CreateTime: row.CreateTime,
    ...(row.ExpirationTime ? { ExpirationTime: row.ExpirationTime } : {}),
    ...(row.Join ? { TrellisJoin: row.Join } : {}),
  };
  return {
    ...body,
    Hash: hashOf(body),
    CreateIndex: row.CreateIndex,
    ModifyIndex: row.ModifyIndex,
  };
}

export function policyView(row: AclPolicyRow, withRules = true): Record<string, unknown> {
  const body = {
    ID: row.ID,
    Name: row.Name,
    Description: row.Description,
    ...(withRules ? { Rules: row.Rules } : {}),
    ...(row.Datacenters.length ? { Datacenters: row.Datacenters } : {}),
  };
  return {
    ...body,
    Hash: hashOf({ ...body, Rules: row.Rules }),
    CreateIndex: row.CreateIndex,
    ModifyIndex: row.ModifyIndex,
  };
}
