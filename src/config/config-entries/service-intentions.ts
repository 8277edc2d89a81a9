/** service-intentions: who may reach a service, at L4 and L7. */
import {
  type Action,
  type HeaderMatch,
  type HttpMatch,
  type Permission,
  validateRule,
} from '../../policy/intentions.js';
import { ENTERPRISE, err, Fields, indexPath, NO_PEERING, prune, type Shape } from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  exactlyOne,
  header,
  headerName,
  methods,
  pathMatch,
  regex,
  serviceName,
} from './shared.js';
import type { ServiceIntentionsEntry, SourceIntention } from './types.js';

export const INTENTION_HEADER_WAYS = [
  'Present',
  'Exact',
  'Prefix',
  'Suffix',
  'Contains',
  'Regex',
] as const;

export const SOURCE_SHAPE: Shape = {
  fields: [
    'Name',
    'Action',
    'Permissions',
    'Type',
    'Description',
    'LegacyID',
    'LegacyMeta',
    'LegacyCreateTime',
    'LegacyUpdateTime',
  ],
  unsupported: { Peer: NO_PEERING, SamenessGroup: ENTERPRISE },
  readOnly: ['Precedence'],
  tenancy: true,
};

export const NO_JWT = 'Trellis does not verify JWTs';

export function action(f: Fields, required: boolean): Action | undefined {
  const a = f.str('Action');
  if (a === undefined) {
    if (required) throw f.err('Action', 'missing (required); use "allow" or "deny"');
    return undefined;
  }
  if (a !== 'allow' && a !== 'deny')
    throw f.err('Action', `must be "allow" or "deny", not ${JSON.stringify(a)}`);
  return a;
}

export function intentionHTTP(h: Fields): HttpMatch {
  const paths = pathMatch(h);
  const header = h.list('Header')?.map((raw, i): HeaderMatch => {
    const m = Fields.of(raw, indexPath(h.at('Header'), i), {
      fields: ['Name', ...INTENTION_HEADER_WAYS, 'Invert', 'IgnoreCase'],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    headerName(m.at('Name'), name);
    exactlyOne(m, INTENTION_HEADER_WAYS);
    const ignoreCase = m.bool('IgnoreCase') || undefined;
    if (ignoreCase && (m.bool('Present') || m.str('Regex') !== undefined))
      throw m.err('IgnoreCase', 'only applies to Exact, Prefix, Suffix or Contains');
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Prefix: m.str('Prefix'),
      Suffix: m.str('Suffix'),
      Contains: m.str('Contains'),
      Regex: regex(m, 'Regex'),
      Invert: m.bool('Invert') || undefined,
      IgnoreCase: ignoreCase,
    });
  });
  const http: HttpMatch = prune({
    ...paths,
    Header: header?.length ? header : undefined,
    Methods: methods(h, 'Methods'),
  });
  if (Object.keys(http).length === 0)
    throw err(h.path, 'set at least one of PathExact, PathPrefix, PathRegex, Header or Methods');
  return http;
}

export function sourceIntention(s: Fields): SourceIntention {
  const name = serviceName(s, 'Name', { required: true, wildcard: true })!;
  const act = action(s, false);
  const permissions = s.list('Permissions')?.map((raw, i): Permission => {
    const p = Fields.of(raw, indexPath(s.at('Permissions'), i), {
      fields: ['Action', 'HTTP'],
      unsupported: { JWT: NO_JWT },
    });
    const permAction = action(p, true)!;
    const h = p.obj('HTTP', {
      fields: ['PathExact', 'PathPrefix', 'PathRegex', 'Header', 'Methods'],
    });
    if (!h) throw p.err('HTTP', 'missing (required): what requests the permission applies to');
    return { Action: permAction, HTTP: intentionHTTP(h) };
  });
  if (act && permissions?.length)
    throw err(s.path, 'Action and Permissions are mutually exclusive');
  if (!act && !permissions?.length) throw err(s.path, 'set one of Action or Permissions');
  const type = s.str('Type');
  if (type !== undefined && type !== 'consul')
    throw s.err('Type', `must be "consul", not ${JSON.stringify(type)}`);
  const legacyMeta = s.strMap('LegacyMeta');
  const source: SourceIntention = prune({
    Name: name,
    Action: act,
    Permissions: permissions?.length ? permissions : undefined,
    Type: 'consul' as const,
    Description: s.str('Description'),
    LegacyID: s.str('LegacyID'),
    LegacyMeta: Object.keys(legacyMeta).length ? legacyMeta : undefined,
    LegacyCreateTime: s.str('LegacyCreateTime'),
    LegacyUpdateTime: s.str('LegacyUpdateTime'),
  });
  return source;
}

export const SERVICE_INTENTIONS_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Sources'],
  unsupported: { JWT: NO_JWT },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function serviceIntentions(f: Fields): ServiceIntentionsEntry {
  const head = header(f, 'service-intentions');
  const seen = new Map<string, number>();
  const sources = (f.list('Sources') ?? []).map((raw, i) => {
    const s = Fields.of(raw, indexPath(f.at('Sources'), i), SOURCE_SHAPE);
    const source = sourceIntention(s);
    const first = seen.get(source.Name);
    if (first !== undefined)
      throw s.err('Name', `"${source.Name}" is already listed in Sources[${first}]`);
    seen.set(source.Name, i);
    // The decision engine's own rule check, so what is stored is what policy will evaluate.
    const problem = validateRule({
      ID: `${source.Name} => ${head.Name}`,
      SourceName: source.Name,
      DestinationName: head.Name,
      Action: source.Action,
      Permissions: source.Permissions,
    });
    if (problem) throw err(s.path, problem);
    return source;
  });
  return { ...head, Sources: sources };
}
