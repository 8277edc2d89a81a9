/**
 * Value checks shared by schemas. Each returns an error message or undefined.
 */
import { isIP } from 'node:net';
import type { Check } from './schema.js';
import { closest } from '../core/suggest.js';
import {
  controlCharProblem,
  metaKeyProblem,
  metaValueProblem,
  META_MAX_PAIRS,
} from '../api/text-rules.js';

export { META_MAX_PAIRS };

// A name that works as one SPIFFE path segment and (nearly) as a DNS label.
const IDENT_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

/** Service names and ids: they end up in SPIFFE ids, DNS names and URL paths. */
export function serviceIdent(what: string): Check<string> {
  return (v) => {
    if (v === '') return `${what} must not be empty`;
    if (IDENT_RE.test(v)) return undefined;
    if (v.length > 63) return `${what} is ${v.length} characters long; at most 63 are allowed`;
    return `invalid ${what} ${JSON.stringify(v)}: use letters, digits, ".", "_" and "-", starting with a letter or digit`;
  };
}

/** Ports: 0 means "not set", as in Consul. */
export const port: Check<number> = (n) =>
  n < 0 || n > 65535 ? `port ${n} is out of range: use 1-65535 (or 0 for none)` : undefined;

export function atLeast(min: number): Check<number> {
  return (n) => (n < min ? `must be at least ${min}, got ${n}` : undefined);
}

export function oneOf(values: readonly string[]): Check<string> {
  const shown = values.filter((v) => v !== '').map((v) => JSON.stringify(v));
  return (v) => {
    if (values.includes(v)) return undefined;
    const guess = closest(
      v,
      values.filter((x) => x !== ''),
    );
    const hint = guess ? `; did you mean ${JSON.stringify(guess)}?` : '';
    return `invalid value ${JSON.stringify(v)}: must be one of ${shown.join(', ')}${hint}`;
  };
}

export function maxLength(max: number, what: string): Check<string> {
  return (v) =>
    v.length > max
      ? `${what} is ${v.length} characters long; at most ${max} are allowed`
      : undefined;
}

export function notEmpty(what: string): Check<string> {
  return (v) => (v === '' ? `${what} must not be empty` : undefined);
}

/** Runs the checks in order; the first failure wins. */
export function all<T>(...checks: Check<T>[]): Check<T> {
  return (v) => {
    for (const c of checks) {
      const problem = c(v);
      if (problem) return problem;
    }
    return undefined;
  };
}

/** A unix user as the capture settings take it: a user name (as useradd allows) or a uid. */
export const unixUser: Check<string> = (v) =>
  /^(?:\d{1,10}|[a-z_][a-z0-9_.-]{0,31}\$?)$/.test(v)
    ? undefined
    : `invalid user ${JSON.stringify(v)}: use a user name (like "web") or a numeric uid`;

/** An IPv4 or IPv6 network, `address/prefix` (a bare address is a /32 or /128). */
export const cidr: Check<string> = (v) => {
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const fam = isIP(addr);
  const bits = slash < 0 ? '' : v.slice(slash + 1);
  if (
    fam !== 0 &&
    (slash < 0 || (/^\d{1,3}$/.test(bits) && Number(bits) <= (fam === 4 ? 32 : 128)))
  )
    return undefined;
  return `invalid CIDR ${JSON.stringify(v)}: use address/prefix, like "10.0.0.0/8" or "fd00::/8"`;
};

/** A cgroup v2 path below /sys/fs/cgroup (what `systemctl show -p ControlGroup UNIT` prints). */
export const cgroupPath: Check<string> = (v) =>
  /^\/?(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.@:-]+(?:\/[A-Za-z0-9_.@:-]+)*$/.test(v)
    ? undefined
    : `invalid cgroup ${JSON.stringify(v)}: use a path below /sys/fs/cgroup, like "system.slice/web.service"`;

/** Free text that may not hold control characters (tags, addresses, check names). */
export function noControl(what: string): Check<string> {
  return (v) => {
    const problem = controlCharProblem(v);
    return problem ? `${what} ${problem}` : undefined;
  };
}

/** Consul's meta rules (api/text-rules.ts), for service and node meta in files. */
export const metaKey: Check<string> = metaKeyProblem;
export const metaValue: Check<string> = metaValueProblem;
