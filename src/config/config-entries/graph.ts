/** Checks across entries (protocols, subset references) against the entries as stored. */
import { configProtocol } from './proxy-defaults.js';
import type { ConfigEntry, ConfigEntryKind, Protocol } from './types.js';

/** The stored entries, as validateConfigGraph and validateConfigDelete see them. */
export interface ConfigEntryView {
  get(kind: ConfigEntryKind, name: string): ConfigEntry | undefined;
  list(kind: ConfigEntryKind): ConfigEntry[];
}

export const HTTP_FAMILY: readonly Protocol[] = ['http', 'http2', 'grpc'];
export const isHttpFamily = (p: Protocol): boolean => HTTP_FAMILY.includes(p);

/** A service's protocol: its service-defaults, else proxy-defaults "global" Config, else tcp. */
export function serviceProtocol(service: string, view: ConfigEntryView): Protocol {
  const sd = view.get('service-defaults', service);
  if (sd?.Kind === 'service-defaults' && sd.Protocol) return sd.Protocol;
  const pd = view.get('proxy-defaults', 'global');
  if (pd?.Kind === 'proxy-defaults') return configProtocol(pd.Config) ?? 'tcp';
  return 'tcp';
}

export interface Problem {
  field?: string;
  reason: string;
  /** What to do; shown only for the entry being written. */
  hint?: string;
}

export const label = (kind: string, name: string): string => `${kind} "${name}"`;
export const useHttp = (service: string): string =>
  `set Protocol = "http" in service-defaults "${service}"`;

export function subsetProblem(
  service: string,
  subset: string,
  field: string,
  view: ConfigEntryView,
): Problem | undefined {
  const r = view.get('service-resolver', service);
  if (r?.Kind !== 'service-resolver')
    return {
      field,
      reason: `subset "${subset}" is not defined: there is no service-resolver "${service}"`,
    };
  if (!r.Subsets || !Object.hasOwn(r.Subsets, subset))
    return { field, reason: `service-resolver "${service}" does not define subset "${subset}"` };
  return undefined;
}

/** Router/splitter targets: compatible protocol, and a subset the target's resolver defines. */
export function targetProblems(
  owner: string,
  ownerProtocol: Protocol,
  service: string | undefined,
  subset: string | undefined,
  field: string,
  view: ConfigEntryView,
): Problem[] {
  const target = service ?? owner;
  const out: Problem[] = [];
  if (target !== owner) {
    const p = serviceProtocol(target, view);
    if (p !== ownerProtocol && !(isHttpFamily(p) && isHttpFamily(ownerProtocol)))
      out.push({
        field: `${field}.Service`,
        reason: `service "${target}" has protocol "${p}", which is not compatible with protocol "${ownerProtocol}" of "${owner}"`,
      });
  }
  if (subset !== undefined) {
    const sp = subsetProblem(target, subset, `${field}.ServiceSubset`, view);
    if (sp) out.push(sp);
  }
  return out;
}

/** Every cross-entry problem of one entry, in the order they are reported. */
export function entryProblems(e: ConfigEntry, view: ConfigEntryView): Problem[] {
  const out: Problem[] = [];
  switch (e.Kind) {
    case 'service-router':
    case 'service-splitter': {
      const proto = serviceProtocol(e.Name, view);
      if (!isHttpFamily(proto))
        out.push({
          reason: `protocol "${proto}" does not support ${e.Kind === 'service-router' ? 'routing' : 'splitting'}`,
          hint: useHttp(e.Name),
        });
      if (e.Kind === 'service-router') {
        (e.Routes ?? []).forEach((r, i) => {
          const d = r.Destination;
          if (d)
            out.push(
              ...targetProblems(
                e.Name,
                proto,
                d.Service,
                d.ServiceSubset,
                `Routes[${i}].Destination`,
                view,
              ),
            );
        });
      } else {
        e.Splits.forEach((s, i) =>
          out.push(
            ...targetProblems(e.Name, proto, s.Service, s.ServiceSubset, `Splits[${i}]`, view),
          ),
        );
      }
      break;
    }
    case 'service-resolver': {
      // References to this resolver's own subsets were checked when it was normalized.
      const ref = (svc: string | undefined, sub: string | undefined, field: string): void => {
        if (sub === undefined || svc === undefined || svc === e.Name) return;
        const p = subsetProblem(svc, sub, `${field}.ServiceSubset`, view);
        if (p) out.push(p);
      };
      if (e.Redirect) ref(e.Redirect.Service, e.Redirect.ServiceSubset, 'Redirect');
      for (const [key, f] of Object.entries(e.Failover ?? {})) {
        const at = `Failover[${JSON.stringify(key)}]`;
        ref(f.Service, f.ServiceSubset, at);
        (f.Targets ?? []).forEach((t, i) => ref(t.Service, t.ServiceSubset, `${at}.Targets[${i}]`));
      }
      break;
    }
    case 'service-intentions': {
      if (e.Name === '*') break;
      const i = e.Sources.findIndex((s) => s.Permissions?.length);
      if (i < 0) break;
      const proto = serviceProtocol(e.Name, view);
      if (!isHttpFamily(proto))
        out.push({
          field: `Sources[${i}].Permissions`,
          reason: `L7 permissions need an HTTP-family protocol (http, http2 or grpc), but "${e.Name}" has protocol "${proto}"`,
          hint: useHttp(e.Name),
        });
      break;
    }
    default:
      break;
  }
  return out;
}

export const describeProblem = (p: Problem, withHint: boolean): string =>
  `${p.field ? `${p.field}: ` : ''}${p.reason}${withHint && p.hint ? `; ${p.hint}` : ''}`;

/** Kinds whose entries can be broken by a change to an entry of `kind`. */
export function dependentKinds(kind: ConfigEntryKind): ConfigEntryKind[] {
  switch (kind) {
    case 'service-defaults':
    case 'proxy-defaults':
      return ['service-router', 'service-splitter', 'service-intentions'];
    case 'service-resolver':
      return ['service-router', 'service-splitter', 'service-resolver'];
    default:
      return [];
  }
}

export function overlay(
  view: ConfigEntryView,
  kind: ConfigEntryKind,
  name: string,
  entry: ConfigEntry | undefined,
): ConfigEntryView {
  return {
    get: (k, n) => (k === kind && n === name ? entry : view.get(k, n)),
    list: (k) =>
      k !== kind
        ? view.list(k)
        : [...view.list(k).filter((e) => e.Name !== name), ...(entry ? [entry] : [])],
  };
}

/**
 * The first entry that was valid before the change and is not after it, with its new problem.
 * Entries already broken in the same way are left alone, so one bad entry cannot block
 * unrelated writes.
 */
export function brokenDependent(
  kind: ConfigEntryKind,
  name: string,
  before: ConfigEntryView,
  after: ConfigEntryView,
): { entry: ConfigEntry; problem: Problem } | undefined {
  for (const k of dependentKinds(kind)) {
    for (const dep of after.list(k)) {
      if (dep.Kind === kind && dep.Name === name) continue;
      const now = entryProblems(dep, after);
      if (now.length === 0) continue;
      const old = new Set(entryProblems(dep, before).map((p) => describeProblem(p, false)));
      const fresh = now.find((p) => !old.has(describeProblem(p, false)));
      if (fresh) return { entry: dep, problem: fresh };
    }
  }
  return undefined;
}

/**
 * The checks Consul makes across entries when one is written: routers and splitters need an
 * HTTP-family protocol, compatible target protocols and defined subsets; L7 intentions need an
 * HTTP-family destination; a change to service-defaults, proxy-defaults or a resolver must not
 * break an entry that depends on it. `entry` is the normalized entry as it would be stored;
 * `view` holds the current entries. Returns a message, or undefined when the write is fine.
 */
export function validateConfigGraph(entry: ConfigEntry, view: ConfigEntryView): string | undefined {
  const after = overlay(view, entry.Kind, entry.Name, entry);
  const own = entryProblems(entry, after)[0];
  if (own) return `${label(entry.Kind, entry.Name)}: ${describeProblem(own, true)}`;
  const broken = brokenDependent(entry.Kind, entry.Name, view, after);
  if (broken)
    return `${label(entry.Kind, entry.Name)}: would invalidate ${label(broken.entry.Kind, broken.entry.Name)}: ${describeProblem(broken.problem, false)}`;
  return undefined;
}

/**
 * Whether deleting an entry leaves the others valid: a resolver whose subsets are referenced,
 * or defaults whose protocol a router, splitter or L7 intention relies on, stay. Deleting what
 * does not exist is fine.
 */
export function validateConfigDelete(
  kind: ConfigEntryKind,
  name: string,
  view: ConfigEntryView,
): string | undefined {
  if (!view.get(kind, name)) return undefined;
  const broken = brokenDependent(kind, name, view, overlay(view, kind, name, undefined));
  if (broken)
    return `cannot delete ${label(kind, name)}: ${label(broken.entry.Kind, broken.entry.Name)} would become invalid: ${describeProblem(broken.problem, false)}`;
  return undefined;
}
