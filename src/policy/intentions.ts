/**
 * Intention decisions: who may call whom, at L4 (connection) and L7 (HTTP request). One pure
 * function serves the catalog (`/v1/connect/intentions/check`, `trellis intention check`) and,
 * later, every proxy, so both always agree and every answer says exactly what decided it.
 *
 * Consul's rules: intentions are ordered by precedence (exact->exact 9, *->exact 8, exact->* 6,
 * *->* 5), ties by destination then source name; the first whose source and destination match
 * decides. An intention with an Action decides at once. One with Permissions is evaluated top
 * to bottom for HTTP requests (first matching permission decides; none matching falls to the
 * default) and counts as deny for L4 connections. No matching intention: the default policy.
 */
import { compileRegex } from '../core/re2.js';

export type Action = 'allow' | 'deny';

export interface HeaderMatch {
  Name: string;
  Present?: boolean;
  Exact?: string;
  Prefix?: string;
  Suffix?: string;
  Contains?: string;
  Regex?: string;
  Invert?: boolean;
  IgnoreCase?: boolean;
}

export interface HttpMatch {
  PathExact?: string;
  PathPrefix?: string;
  PathRegex?: string;
  Methods?: string[];
  Header?: HeaderMatch[];
}

export interface Permission {
  Action: Action;
  HTTP?: HttpMatch;
}

export interface IntentionRule {
  /** An id for explanations (Consul's intention ID, or "source => destination"). */
  ID: string;
  SourceName: string;
  DestinationName: string;
  Action?: Action;
  Permissions?: Permission[];
}

/**
 * A request's header fields by lower-case name: one string per field line, an array when the
 * field was repeated (never pre-joined, so a rule can see every value). `host` holds the
 * authority (`:authority` in a rule reads it too).
 */
export type HeaderFields = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface Request {
  source: string;
  destination: string;
  /** Present for an L7 decision; absent for a connection. */
  http?: { path: string; method: string; headers: HeaderFields };
}

export interface Decision {
  allowed: boolean;
  /** One sentence naming what decided, e.g. 'intention web => api (allow)'. */
  reason: string;
  intention?: IntentionRule;
  /** Index of the deciding permission within the intention's Permissions. */
  permission?: number;
}

export function precedence(source: string, destination: string): number {
  const srcExact = source !== '*';
  const dstExact = destination !== '*';
  if (srcExact && dstExact) return 9;
  if (!srcExact && dstExact) return 8;
  if (srcExact && !dstExact) return 6;
  return 5;
}

/** Evaluation order: higher precedence first; ties by destination, then source name. */
export function sortIntentions<T extends IntentionRule>(rules: readonly T[]): T[] {
  return [...rules].sort(
    (a, b) =>
      precedence(b.SourceName, b.DestinationName) - precedence(a.SourceName, a.DestinationName) ||
      a.DestinationName.localeCompare(b.DestinationName) ||
      a.SourceName.localeCompare(b.SourceName),
  );
}

const matchesName = (pattern: string, name: string): boolean => pattern === '*' || pattern === name;

/** Validates the regexes of a rule: linear-time RE2 or an error naming the field. */
export function validateRule(rule: IntentionRule): string | undefined {
  if (rule.Action && rule.Permissions?.length)
    return 'Action and Permissions are mutually exclusive';
  if (!rule.Action && !rule.Permissions?.length) return 'one of Action or Permissions is required';
  for (const [i, p] of (rule.Permissions ?? []).entries()) {
    const paths = [p.HTTP?.PathExact, p.HTTP?.PathPrefix, p.HTTP?.PathRegex].filter(
      (x) => x !== undefined,
    );
    if (paths.length > 1)
      return `Permissions[${i}].HTTP: at most one of PathExact, PathPrefix, PathRegex`;
    if (p.HTTP?.PathRegex !== undefined) {
      const r = compileFullMatch(p.HTTP.PathRegex);
      if (!r.ok) return `Permissions[${i}].HTTP.PathRegex: ${r.reason}`;
    }
    for (const [j, h] of (p.HTTP?.Header ?? []).entries()) {
      if (h.Regex !== undefined) {
        const r = compileFullMatch(h.Regex);
        if (!r.ok) return `Permissions[${i}].HTTP.Header[${j}].Regex: ${r.reason}`;
      }
    }
  }
  return undefined;
}

/**
 * Regexes in permissions must match the whole path or header value, as Envoy's safe_regex does
 * for Consul: an allow on PathRegex "/api" must not also allow "/x/api/y".
 */
export function compileFullMatch(pattern: string): ReturnType<typeof compileRegex> {
  return compileRegex(pattern, 'whole');
}

const compiled = new Map<string, (subject: string) => boolean>();
const MAX_COMPILED = 1024;

/** Compiles each pattern once (bounded memo), since the same rules run on every request. */
function regexTest(pattern: string, subject: string): boolean {
  let test = compiled.get(pattern);
  if (!test) {
    const r = compileFullMatch(pattern);
    // Rules are validated on write; an invalid pattern here matches nothing.
    test = r.ok ? r.test : () => false;
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(pattern, test);
  }
  return test(subject);
}

/** One reading of a header value against a rule, before Invert. */
function valueMatches(h: HeaderMatch, raw: string): boolean {
  const v = h.IgnoreCase ? raw.toLowerCase() : raw;
  const want = (s: string): string => (h.IgnoreCase ? s.toLowerCase() : s);
  if (h.Exact !== undefined) return v === want(h.Exact);
  if (h.Prefix !== undefined) return v.startsWith(want(h.Prefix));
  if (h.Suffix !== undefined) return v.endsWith(want(h.Suffix));
  if (h.Contains !== undefined) return v.includes(want(h.Contains));
  if (h.Regex !== undefined) return regexTest(h.Regex, raw);
  return true; // Present, or a bare name
}

/**
 * A header rule sees every reading an application could take of the header: each field line,
 * the lines joined with ", " (what most frameworks hand the app), and each comma-separated
 * element. In a deny permission the rule holds if ANY reading matches; in an allow permission
 * only if EVERY reading does, except that a plain (not inverted) allow rule is not held to
 * the comma elements, since headers such as User-Agent contain commas that are not list
 * separators. A missing header matches only an inverted rule.
 */
function headerMatches(h: HeaderMatch, headers: HeaderFields, deny: boolean): boolean {
  const name = h.Name.toLowerCase();
  const raw = headers[name === ':authority' ? 'host' : name];
  if (raw === undefined) return h.Invert === true;
  const test = (v: string): boolean => valueMatches(h, v) !== (h.Invert === true);
  if (typeof raw === 'string' && !raw.includes(',')) return test(raw); // the usual case
  const lines: readonly string[] = typeof raw === 'string' ? [raw] : raw;
  const elements = deny || h.Invert === true;
  const readings: string[] = [...lines];
  if (lines.length > 1) readings.push(lines.join(', '));
  if (elements)
    for (const line of lines)
      if (line.includes(',')) for (const e of line.split(',')) readings.push(e.trim());
  return deny ? readings.some(test) : readings.every(test);
}

function httpMatches(
  m: HttpMatch | undefined,
  http: NonNullable<Request['http']>,
  deny: boolean,
): boolean {
  if (!m) return true;
  if (m.PathExact !== undefined && http.path !== m.PathExact) return false;
  if (m.PathPrefix !== undefined && !http.path.startsWith(m.PathPrefix)) return false;
  if (m.PathRegex !== undefined && !regexTest(m.PathRegex, http.path)) return false;
  if (m.Methods?.length && !m.Methods.some((x) => x.toUpperCase() === http.method.toUpperCase()))
    return false;
  for (const h of m.Header ?? []) if (!headerMatches(h, http.headers, deny)) return false;
  return true;
}

/** Decides a request; `rules` must already be in evaluation order (sortIntentions). */
export function decide(
  rules: readonly IntentionRule[],
  req: Request,
  defaultAllow: boolean,
): Decision {
  for (const rule of rules) {
    if (
      !matchesName(rule.SourceName, req.source) ||
      !matchesName(rule.DestinationName, req.destination)
    )
      continue;
    const name = `${rule.SourceName} => ${rule.DestinationName}`;
    if (rule.Action) {
      return {
        allowed: rule.Action === 'allow',
        reason: `intention ${name} (${rule.Action})`,
        intention: rule,
      };
    }
    if (!req.http) {
      return {
        allowed: false,
        reason: `intention ${name} has L7 permissions, which deny plain connections`,
        intention: rule,
      };
    }
    const perms = rule.Permissions ?? [];
    for (let i = 0; i < perms.length; i++) {
      if (httpMatches(perms[i]!.HTTP, req.http, perms[i]!.Action === 'deny')) {
        const action = perms[i]!.Action;
        return {
          allowed: action === 'allow',
          reason: `intention ${name}, permission ${i + 1} (${action})`,
          intention: rule,
          permission: i,
        };
      }
    }
    return {
      allowed: defaultAllow,
      reason: `intention ${name} matched, but none of its permissions did: default policy (${defaultAllow ? 'allow' : 'deny'})`,
      intention: rule,
    };
  }
  return {
    allowed: defaultAllow,
    reason: `no intention matched: default policy (${defaultAllow ? 'allow' : 'deny'})`,
  };
}

/**
 * Intentions indexed by (source, destination). One pair has at most one intention, so the only
 * ones that can match a request are exact => exact, * => exact, exact => * and * => *, in that
 * (evaluation) order: decide() over candidates() answers as over every intention, in constant
 * time however many there are.
 */
export class IntentionIndex<T extends { SourceName: string; DestinationName: string }> {
  readonly #byPair = new Map<string, T>();

  constructor(rules: Iterable<T>) {
    for (const r of rules) this.#byPair.set(pairKey(r.SourceName, r.DestinationName), r);
  }

  candidates(source: string, destination: string): T[] {
    const out: T[] = [];
    for (const [s, d] of [
      [source, destination],
      ['*', destination],
      [source, '*'],
      ['*', '*'],
    ] as const) {
      const r = this.#byPair.get(pairKey(s, d));
      if (r && !out.includes(r)) out.push(r);
    }
    return out;
  }
}

const pairKey = (source: string, destination: string): string => `${destination}\n${source}`;
