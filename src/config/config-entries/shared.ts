/** Pieces several kinds share: names, HTTP matchers, proxy settings, the common header. */
import { NAME_RE } from '../../api/normalize.js';
import { compileRegex } from '../../core/re2.js';
import { err, Fields, indexPath, keyPath, MAX_META_PAIRS, prune, type Shape } from './fields.js';
import {
  type ConfigEntryHeader,
  type ConfigEntryKind,
  type ExposeConfig,
  type ExposePath,
  type HTTPHeaderModifiers,
  type MeshGatewayConfig,
  type MeshGatewayMode,
  type MutualTLSMode,
  type Protocol,
  PROTOCOLS,
  type ProxyMode,
  type RouteHTTPMatch,
  type TransparentProxyConfig,
} from './types.js';

export const NAME_RULE =
  "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.' or '-'";

/** A service name: also a DNS label and a SPIFFE path segment, so no '/', ' ', '.', '..'. */
export function serviceName(
  f: Fields,
  k: string,
  opts: { required?: boolean; wildcard?: boolean } = {},
) {
  const v = f.str(k);
  if (v === undefined) {
    if (opts.required) throw f.err(k, 'missing (required)');
    return undefined;
  }
  if (opts.wildcard && v === '*') return v;
  if (!NAME_RE.test(v))
    throw f.err(
      k,
      `${JSON.stringify(v.slice(0, 64))} is not a valid service name (${NAME_RULE}${opts.wildcard ? ', or "*"' : ''})`,
    );
  return v;
}

export const SUBSET_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const SUBSET_RULE =
  "1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit";

export function subsetName(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v !== undefined && !SUBSET_RE.test(v))
    throw f.err(k, `${JSON.stringify(v.slice(0, 64))} is not a valid subset name (${SUBSET_RULE})`);
  return v;
}

export function datacenterName(field: string, v: string): string {
  if (!NAME_RE.test(v))
    throw err(field, `${JSON.stringify(v.slice(0, 64))} is not a valid datacenter name`);
  return v;
}

export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
];

export function methods(f: Fields, k: string): string[] | undefined {
  const list = f.strList(k);
  if (!list?.length) return undefined;
  const seen = new Set<string>();
  list.forEach((m, i) => {
    const p = indexPath(f.at(k), i);
    if (!HTTP_METHODS.includes(m)) {
      const upper = HTTP_METHODS.includes(m.toUpperCase());
      throw err(
        p,
        upper
          ? `${JSON.stringify(m)}: methods are upper case; write "${m.toUpperCase()}"`
          : `${JSON.stringify(m)} is not an HTTP method (${HTTP_METHODS.join(', ')})`,
      );
    }
    if (seen.has(m)) throw err(p, `${m} is listed twice`);
    seen.add(m);
  });
  return list;
}

export function regex(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v === undefined) return undefined;
  const r = compileRegex(v);
  if (!r.ok) throw f.err(k, `invalid regular expression: ${r.reason}`);
  return v;
}

export function absolutePath(f: Fields, k: string): string | undefined {
  const v = f.str(k);
  if (v !== undefined && !v.startsWith('/'))
    throw f.err(k, `must begin with "/", not ${JSON.stringify(v)}`);
  return v;
}

/** At most one of the path matchers; paths must be absolute, regexes linear-time RE2. */
export function pathMatch(
  f: Fields,
): Pick<RouteHTTPMatch, 'PathExact' | 'PathPrefix' | 'PathRegex'> {
  const set = ['PathExact', 'PathPrefix', 'PathRegex'].filter((k) => f.str(k) !== undefined);
  if (set.length > 1)
    throw err(
      f.path,
      `set at most one of PathExact, PathPrefix or PathRegex (found ${set.join(' and ')})`,
    );
  return {
    PathExact: absolutePath(f, 'PathExact'),
    PathPrefix: absolutePath(f, 'PathPrefix'),
    PathRegex: regex(f, 'PathRegex'),
  };
}

/** Exactly one way to match a header or parameter; Go's zero values ("" and false) are unset. */
export function exactlyOne(f: Fields, ways: readonly string[]): void {
  const set = ways.filter((k) => (k === 'Present' ? f.bool(k) === true : f.str(k) !== undefined));
  if (set.length !== 1)
    throw err(
      f.path,
      `set exactly one of ${ways.slice(0, -1).join(', ')} or ${ways[ways.length - 1]}` +
        (set.length ? ` (found ${set.join(' and ')})` : ''),
    );
}

export const HEADER_NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function headerName(field: string, name: string): string {
  if (!HEADER_NAME_RE.test(name))
    throw err(field, `${JSON.stringify(name.slice(0, 64))} is not a valid HTTP header name`);
  return name;
}

export const HEADER_MODIFIER_SHAPE: Shape = { fields: ['Add', 'Set', 'Remove'] };

export function headerModifiers(f: Fields, k: string): HTTPHeaderModifiers | undefined {
  const m = f.obj(k, HEADER_MODIFIER_SHAPE);
  if (!m) return undefined;
  const maps = (['Add', 'Set'] as const).map((which) => {
    const map = m.strMap(which, 256, 8192);
    for (const name of Object.keys(map)) headerName(keyPath(m.at(which), name), name);
    return Object.keys(map).length ? map : undefined;
  });
  const remove = m.strList('Remove');
  remove?.forEach((name, i) => headerName(indexPath(m.at('Remove'), i), name));
  const out = prune({ Add: maps[0], Set: maps[1], Remove: remove?.length ? remove : undefined });
  return Object.keys(out).length ? out : undefined;
}

export const TRANSPARENT_PROXY_SHAPE: Shape = {
  fields: ['OutboundListenerPort', 'DialedDirectly'],
};

export function transparentProxy(f: Fields): TransparentProxyConfig | undefined {
  const t = f.obj('TransparentProxy', TRANSPARENT_PROXY_SHAPE);
  if (!t) return undefined;
  return prune({
    OutboundListenerPort: t.int('OutboundListenerPort', 0, 65535),
    DialedDirectly: t.bool('DialedDirectly'),
  });
}

export function meshGateway(f: Fields): MeshGatewayConfig | undefined {
  const m = f.obj('MeshGateway', { fields: ['Mode'] });
  if (!m) return undefined;
  return prune({ Mode: m.oneOf<MeshGatewayMode>('Mode', ['none', 'local', 'remote']) });
}

export const EXPOSE_PATH_SHAPE: Shape = {
  fields: ['Path', 'LocalPathPort', 'ListenerPort', 'Protocol'],
  readOnly: ['ParsedFromCheck'],
};

export function expose(f: Fields): ExposeConfig | undefined {
  const e = f.obj('Expose', { fields: ['Checks', 'Paths'] });
  if (!e) return undefined;
  const paths = e.list('Paths')?.map((raw, i): ExposePath => {
    const p = Fields.of(raw, indexPath(e.at('Paths'), i), EXPOSE_PATH_SHAPE);
    const path = absolutePath(p, 'Path');
    if (path === undefined) throw p.err('Path', 'missing (required)');
    return prune({
      Path: path,
      LocalPathPort: p.int('LocalPathPort', 0, 65535),
      ListenerPort: p.int('ListenerPort', 0, 65535),
      Protocol: p.oneOf<'http' | 'http2'>('Protocol', ['http', 'http2'], true),
    });
  });
  return prune({ Checks: e.bool('Checks'), Paths: paths?.length ? paths : undefined });
}

export function proxyMode(f: Fields): ProxyMode | undefined {
  return f.oneOf<ProxyMode>('Mode', ['direct', 'transparent']);
}

export function mutualTLSMode(f: Fields): MutualTLSMode | undefined {
  return f.oneOf<MutualTLSMode>('MutualTLSMode', ['strict', 'permissive']);
}

export function protocol(f: Fields, k: string): Protocol | undefined {
  return f.oneOf<Protocol>(k, PROTOCOLS, true);
}

// ---------------------------------------------------------------------------------------------
// Kinds

export const COMMON_FIELDS = ['Kind', 'Name', 'Meta'];
export const COMMON_READ_ONLY = ['CreateIndex', 'ModifyIndex', 'Hash'];

export function header<K extends ConfigEntryKind>(f: Fields, kind: K): ConfigEntryHeader<K> {
  const name = entryName(f, kind);
  const meta = f.strMap('Meta', 128, 512, MAX_META_PAIRS);
  return prune({ Kind: kind, Name: name, Meta: Object.keys(meta).length ? meta : undefined });
}

export function entryName(f: Fields, kind: ConfigEntryKind): string {
  if (kind === 'proxy-defaults') {
    const v = f.str('Name');
    if (v === undefined)
      throw f.err('Name', 'missing (required); proxy-defaults is named "global"');
    if (v !== 'global')
      throw f.err(
        'Name',
        `proxy-defaults must be named "global", not ${JSON.stringify(v.slice(0, 64))}`,
      );
    return v;
  }
  return serviceName(f, 'Name', { required: true, wildcard: kind === 'service-intentions' })!;
}
