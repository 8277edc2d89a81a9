/** service-router: L7 routes by path, header, query parameter and method. */
import { err, Fields, indexPath, prune, type Shape } from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  exactlyOne,
  header,
  headerModifiers,
  headerName,
  methods,
  pathMatch,
  regex,
  serviceName,
  subsetName,
} from './shared.js';
import type {
  RouteDestination,
  RouteHeaderMatch,
  RouteHTTPMatch,
  RouteQueryParamMatch,
  ServiceRoute,
  ServiceRouterEntry,
} from './types.js';

export const ROUTE_HEADER_WAYS = ['Present', 'Exact', 'Prefix', 'Suffix', 'Regex'] as const;
export const QUERY_PARAM_WAYS = ['Present', 'Exact', 'Regex'] as const;

export const ROUTE_HTTP_SHAPE: Shape = {
  fields: ['PathExact', 'PathPrefix', 'PathRegex', 'Header', 'QueryParam', 'Methods'],
};

export function routeHTTPMatch(h: Fields): RouteHTTPMatch {
  const paths = pathMatch(h);
  const header = h.list('Header')?.map((raw, i): RouteHeaderMatch => {
    const m = Fields.of(raw, indexPath(h.at('Header'), i), {
      fields: ['Name', ...ROUTE_HEADER_WAYS, 'Invert'],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    headerName(m.at('Name'), name);
    exactlyOne(m, ROUTE_HEADER_WAYS);
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Prefix: m.str('Prefix'),
      Suffix: m.str('Suffix'),
      Regex: regex(m, 'Regex'),
      Invert: m.bool('Invert') || undefined,
    });
  });
  const query = h.list('QueryParam')?.map((raw, i): RouteQueryParamMatch => {
    const m = Fields.of(raw, indexPath(h.at('QueryParam'), i), {
      fields: ['Name', ...QUERY_PARAM_WAYS],
    });
    const name = m.str('Name');
    if (name === undefined) throw m.err('Name', 'missing (required)');
    exactlyOne(m, QUERY_PARAM_WAYS);
    return prune({
      Name: name,
      Present: m.bool('Present') || undefined,
      Exact: m.str('Exact'),
      Regex: regex(m, 'Regex'),
    });
  });
  return prune({
    ...paths,
    Header: header?.length ? header : undefined,
    QueryParam: query?.length ? query : undefined,
    Methods: methods(h, 'Methods'),
  });
}

export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

export const DESTINATION_SHAPE: Shape = {
  fields: [
    'Service',
    'ServiceSubset',
    'PrefixRewrite',
    'RequestTimeout',
    'IdleTimeout',
    'NumRetries',
    'RetryOnConnectFailure',
    'RetryOnStatusCodes',
    'RetryOn',
    'RequestHeaders',
    'ResponseHeaders',
  ],
  tenancy: true,
};

export function routeDestination(d: Fields, match: RouteHTTPMatch | undefined): RouteDestination {
  const prefixRewrite = d.str('PrefixRewrite');
  if (prefixRewrite !== undefined && !match?.PathPrefix && !match?.PathExact)
    throw d.err('PrefixRewrite', 'requires the route to match on PathPrefix or PathExact');
  const codes = d.list('RetryOnStatusCodes')?.map((raw, i) => {
    const at = indexPath(d.at('RetryOnStatusCodes'), i);
    const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 100 || n > 599)
      throw err(at, `must be an HTTP status code from 100 to 599, not ${JSON.stringify(raw)}`);
    return n;
  });
  const retryOn = d.strList('RetryOn');
  retryOn?.forEach((c, i) => {
    if (!(RETRY_ON as readonly string[]).includes(c))
      throw err(
        indexPath(d.at('RetryOn'), i),
        `${JSON.stringify(c)} is not a retry condition (${RETRY_ON.join(', ')})`,
      );
  });
  return prune({
    Service: serviceName(d, 'Service'),
    ServiceSubset: subsetName(d, 'ServiceSubset'),
    PrefixRewrite: prefixRewrite,
    RequestTimeout: d.duration('RequestTimeout'),
    IdleTimeout: d.duration('IdleTimeout'),
    NumRetries: d.int('NumRetries'),
    RetryOnConnectFailure: d.bool('RetryOnConnectFailure') || undefined,
    RetryOnStatusCodes: codes?.length ? codes : undefined,
    RetryOn: retryOn?.length ? retryOn : undefined,
    RequestHeaders: headerModifiers(d, 'RequestHeaders'),
    ResponseHeaders: headerModifiers(d, 'ResponseHeaders'),
  });
}

export const SERVICE_ROUTER_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Routes'],
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function serviceRouter(f: Fields): ServiceRouterEntry {
  const routes = f.list('Routes')?.map((raw, i): ServiceRoute => {
    const r = Fields.of(raw, indexPath(f.at('Routes'), i), { fields: ['Match', 'Destination'] });
    const m = r.obj('Match', { fields: ['HTTP'] });
    const h = m?.obj('HTTP', ROUTE_HTTP_SHAPE);
    const http = h ? routeHTTPMatch(h) : undefined;
    const d = r.obj('Destination', DESTINATION_SHAPE);
    return prune({
      Match: m ? prune({ HTTP: http }) : undefined,
      Destination: d ? routeDestination(d, http) : undefined,
    });
  });
  return prune({ ...header(f, 'service-router'), Routes: routes?.length ? routes : undefined });
}
