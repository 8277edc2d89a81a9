/**
 * Prepared query bodies (POST /v1/query, PUT /v1/query/:id) -> validated definitions, and the
 * interpolation of templates (`${name.full}`, `${name.prefix}`, `${name.suffix}`,
 * `${match(N)}`, `${agent.segment}`). Pure.
 *
 * A template's Regexp must be valid both for the linear-time matcher (which decides whether it
 * matches, so a hostile pattern cannot stall the server) and for JavaScript's RegExp (which
 * extracts the groups, and runs only on names the linear matcher has matched). A pattern only
 * one of them accepts is refused, so both read it the same way.
 */
import { badRequest } from '../core/errors.js';
import { compileRegex } from '../core/re2.js';
import { parseDuration } from '../core/duration.js';
import { bool, canonicalize, int, isObject, str, strList, strMap } from './normalize.js';
import type { PreparedQueryService, PreparedQueryTemplate } from './cluster-types.js';

/** A query definition as a client sent it; Token is the secret given (or "<hidden>"). */
export interface PreparedQueryRequest {
  Name: string;
  Session: string;
  Token: string;
  Template: PreparedQueryTemplate;
  Service: PreparedQueryService;
  DNS: { TTL: string };
}

export const HIDDEN_TOKEN = '<hidden>';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_NAME = 256;

const FIELDS = [
  'ID',
  'Name',
  'Session',
  'Token',
  'Template',
  'Service',
  'DNS',
  'RaftIndex',
  'Near',
];
const SERVICE_FIELDS = [
  'Service',
  'Failover',
  'IgnoreCheckIDs',
  'OnlyPassing',
  'Near',
  'Tags',
  'NodeMeta',
  'ServiceMeta',
  'Connect',
  'Peer',
  'SamenessGroup',
];

export function normalizePreparedQuery(raw: unknown): PreparedQueryRequest {
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const o = canonicalize(raw, FIELDS);
  const name = str(o, 'Name', '');
  if (name.length > MAX_NAME) throw badRequest(`Name: longer than ${MAX_NAME} characters`, 'Name');
  if (UUID_RE.test(name))
    throw badRequest('Name: a query name cannot be a UUID (it would shadow query IDs)', 'Name');
  const template = normalizeTemplate(o.Template);
  const service = normalizeService(o.Service);
  // The npm `consul` client sends Near beside Service; Consul ignores it there, but the
  // caller plainly means the service's Near. Two different values have no single meaning.
  const near = str(o, 'Near', '');
  if (near !== '') {
    if (service.Near !== '' && service.Near !== near)
      throw badRequest('Near: differs from Service.Near; set only Service.Near', 'Near');
    service.Near = near;
  }
  if (template.Type !== '') checkInterpolation(service);
  let dns = { TTL: '' };
  if (o.DNS !== undefined && o.DNS !== null) {
    if (!isObject(o.DNS)) throw badRequest('DNS: must be an object', 'DNS');
    const d = canonicalize(o.DNS, ['TTL'], 'DNS.');
    const ttl = str(d, 'TTL', 'DNS.');
    if (ttl !== '' && parseDuration(ttl) === undefined)
      throw badRequest(`DNS.TTL: "${ttl.slice(0, 40)}" is not a duration (e.g. "10s")`, 'DNS.TTL');
    dns = { TTL: ttl };
  }
  return {
    Name: name,
    Session: str(o, 'Session', ''),
    Token: str(o, 'Token', ''),
    Template: template,
    Service: service,
    DNS: dns,
  };
}

function normalizeTemplate(raw: unknown): PreparedQueryTemplate {
  if (raw === undefined || raw === null) return { Type: '', Regexp: '', RemoveEmptyTags: false };
  if (!isObject(raw)) throw badRequest('Template: must be an object', 'Template');
  const t = canonicalize(raw, ['Type', 'Regexp', 'RemoveEmptyTags'], 'Template.');
  const type = str(t, 'Type', 'Template.');
  const regexp = str(t, 'Regexp', 'Template.');
  if (type !== '' && type !== 'name_prefix_match')
    throw badRequest(
      `Template.Type: "${type.slice(0, 40)}" is not supported (use "name_prefix_match")`,
      'Template.Type',
    );
  if (type === '' && regexp !== '')
    throw badRequest('Template.Regexp: set only with Template.Type', 'Template.Regexp');
  if (regexp !== '') {
    const linear = compileRegex(regexp);
    if (!linear.ok) throw badRequest(`Template.Regexp: ${linear.reason}`, 'Template.Regexp');
    try {
      new RegExp(regexp);
    } catch {
      throw badRequest(
        'Template.Regexp: uses syntax Trellis cannot extract groups with; use plain RE2 groups',
        'Template.Regexp',
      );
    }
  }
  return { Type: type, Regexp: regexp, RemoveEmptyTags: bool(t, 'RemoveEmptyTags', 'Template.') };
}

function normalizeService(raw: unknown): PreparedQueryService {
  if (!isObject(raw)) throw badRequest('Service: missing (required)', 'Service');
  const s = canonicalize(raw, SERVICE_FIELDS, 'Service.');
  const p = 'Service.';
  const service = str(s, 'Service', p);
  if (service === '') throw badRequest('Service.Service: missing (required)', 'Service.Service');
  if (service.length > MAX_NAME)
    throw badRequest(`Service.Service: longer than ${MAX_NAME} characters`, 'Service.Service');
  if (str(s, 'Peer', p) !== '')
    throw badRequest('Service.Peer: cluster peering is not supported by Trellis', 'Service.Peer');
  if (str(s, 'SamenessGroup', p) !== '')
    throw badRequest(
      'Service.SamenessGroup: sameness groups are not supported by Trellis',
      'Service.SamenessGroup',
    );
  const tags = strList(s, 'Tags', p);
  const ignore = strList(s, 'IgnoreCheckIDs', p);
  const nodeMeta = strMap(s, 'NodeMeta', p);
  const serviceMeta = strMap(s, 'ServiceMeta', p);
  return {
    Service: service,
    Failover: normalizeFailover(s.Failover),
    IgnoreCheckIDs: ignore.length ? ignore : null,
    OnlyPassing: bool(s, 'OnlyPassing', p),
    Near: str(s, 'Near', p),
    Tags: tags.length ? tags : null,
    NodeMeta: Object.keys(nodeMeta).length ? nodeMeta : null,
    ServiceMeta: Object.keys(serviceMeta).length ? serviceMeta : null,
    Connect: bool(s, 'Connect', p),
  };
}

/**
 * Failover.Targets naming datacenters means the same as Datacenters here and is stored so;
 * Targets naming peers are refused (no cluster peering).
 */
function normalizeFailover(raw: unknown): PreparedQueryService['Failover'] {
  if (raw === undefined || raw === null) return { NearestN: 0, Datacenters: null };
  const p = 'Service.Failover.';
  if (!isObject(raw)) throw badRequest('Service.Failover: must be an object', 'Service.Failover');
  const f = canonicalize(raw, ['NearestN', 'Datacenters', 'Targets'], p);
  const nearest = int(f, 'NearestN', p, 0, 0, 1000);
  const dcs = strList(f, 'Datacenters', p);
  if (f.Targets !== undefined && f.Targets !== null) {
    if (!Array.isArray(f.Targets)) throw badRequest(`${p}Targets: must be a list`, `${p}Targets`);
    if (f.Targets.length > 0 && (nearest > 0 || dcs.length > 0))
      throw badRequest(
        `${p}Targets: cannot be combined with NearestN or Datacenters`,
        `${p}Targets`,
      );
    f.Targets.forEach((t: unknown, i) => {
      const at = `${p}Targets[${i}].`;
      if (!isObject(t)) throw badRequest(`${at.slice(0, -1)}: must be an object`, at.slice(0, -1));
      const o = canonicalize(t, ['PeerName', 'Datacenter'], at);
      if (str(o, 'PeerName', at) !== '')
        throw badRequest(`${at}PeerName: cluster peering is not supported`, `${at}PeerName`);
      const dc = str(o, 'Datacenter', at);
      if (dc === '') throw badRequest(`${at}Datacenter: missing (required)`, `${at}Datacenter`);
      dcs.push(dc);
    });
  }
  return { NearestN: nearest, Datacenters: dcs.length ? dcs : null };
}

// ---- templates --------------------------------------------------------------------------------

export interface TemplateVars {
  full: string;
  prefix: string;
  suffix: string;
  /** Regexp groups (0 = the whole match); empty when there is no Regexp or no match. */
  groups: string[];
}

const VAR_RE = /\$\{([^}]*)\}/g;

function lookup(expr: string, v: TemplateVars | undefined, field: string): string {
  const e = expr.trim();
  const m = /^match\(\s*(\d+)\s*\)$/.exec(e);
  if (m) return v ? (v.groups[Number(m[1])] ?? '') : '';
  switch (e) {
    case 'name.full':
      return v?.full ?? '';
    case 'name.prefix':
      return v?.prefix ?? '';
    case 'name.suffix':
      return v?.suffix ?? '';
    case 'agent.segment':
      return '';
    default:
      throw badRequest(
        `${field}: unknown template variable "\${${e.slice(0, 40)}}" (use name.full, name.prefix, name.suffix, match(N) or agent.segment)`,
        field,
      );
  }
}

function render(s: string, v: TemplateVars | undefined, field: string): string {
  return s.replace(VAR_RE, (_all, expr: string) => lookup(expr, v, field));
}

/** Every string field of Service, with its field name, rendered through `f`. */
function mapStrings(
  s: PreparedQueryService,
  f: (value: string, field: string) => string,
): PreparedQueryService {
  const map = (m: Record<string, string> | null, field: string) =>
    m ? Object.fromEntries(Object.entries(m).map(([k, x]) => [k, f(x, `${field}.${k}`)])) : null;
  return {
    ...s,
    Service: f(s.Service, 'Service.Service'),
    Near: f(s.Near, 'Service.Near'),
    Tags: s.Tags ? s.Tags.map((t, i) => f(t, `Service.Tags[${i}]`)) : null,
    IgnoreCheckIDs: s.IgnoreCheckIDs
      ? s.IgnoreCheckIDs.map((t, i) => f(t, `Service.IgnoreCheckIDs[${i}]`))
      : null,
    NodeMeta: map(s.NodeMeta, 'Service.NodeMeta'),
    ServiceMeta: map(s.ServiceMeta, 'Service.ServiceMeta'),
    Failover: {
      ...s.Failover,
      Datacenters: s.Failover.Datacenters
        ? s.Failover.Datacenters.map((d, i) => f(d, `Service.Failover.Datacenters[${i}]`))
        : null,
    },
  };
}

/** Refuses unknown variables when a template is written, not when it is run. */
function checkInterpolation(s: PreparedQueryService): void {
  mapStrings(s, (x, field) => render(x, undefined, field));
}

/**
 * The variables of `name` looked up through a template named `prefix`. `matches` is the
 * linear-time test of the template's Regexp; groups are extracted only when it matched.
 */
export function templateVars(
  name: string,
  prefix: string,
  regexp: string,
  matches: (s: string) => boolean,
): TemplateVars {
  let groups: string[] = [];
  if (regexp !== '' && matches(name)) {
    const m = new RegExp(regexp).exec(name);
    if (m) groups = m.map((g) => g ?? '');
  }
  return { full: name, prefix, suffix: name.slice(prefix.length), groups };
}

/** The service section of a template rendered for one lookup. */
export function renderTemplate(
  s: PreparedQueryService,
  t: PreparedQueryTemplate,
  vars: TemplateVars,
): PreparedQueryService {
  const out = mapStrings(s, (x, field) => render(x, vars, field));
  if (t.RemoveEmptyTags && out.Tags) out.Tags = out.Tags.filter((x) => x !== '');
  return out;
}
