/**
 * ACL decisions in Consul's rule language. A token's policies are merged into one rule set
 * (for the same resource and name, deny wins, else the most permissive), then a request for
 * `resource name access` is decided by the exact rule for the name, else the longest matching
 * prefix rule, else the default policy. write implies list and read; list implies read.
 */
export type Disposition = 'deny' | 'read' | 'list' | 'write';
export type Access = 'read' | 'list' | 'write';

export const NAMED_RESOURCES = [
  'agent',
  'event',
  'key',
  'node',
  'query',
  'service',
  'session',
] as const;
export type NamedResource = (typeof NAMED_RESOURCES)[number];
export const GLOBAL_RESOURCES = ['acl', 'keyring', 'mesh', 'operator', 'peering'] as const;
export type GlobalResource = (typeof GLOBAL_RESOURCES)[number];

export interface AclRule {
  policy: Disposition;
  /** For service rules: access to intentions with this destination (defaults from policy). */
  intentions?: Disposition;
}

export interface AclRuleSet {
  exact: Partial<Record<NamedResource, Map<string, AclRule>>>;
  prefix: Partial<Record<NamedResource, Map<string, AclRule>>>;
  global: Partial<Record<GlobalResource, Disposition>>;
}

export function emptyRuleSet(): AclRuleSet {
  return { exact: {}, prefix: {}, global: {} };
}

const RANK: Record<Disposition, number> = { deny: 0, read: 1, list: 2, write: 3 };
const NEED: Record<Access, number> = { read: 1, list: 2, write: 3 };

function combine(a: Disposition | undefined, b: Disposition | undefined): Disposition | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a === 'deny' || b === 'deny') return 'deny';
  return RANK[a] >= RANK[b] ? a : b;
}

function mergeMaps(into: Map<string, AclRule>, from: Map<string, AclRule>): void {
  for (const [name, rule] of from) {
    const cur = into.get(name);
    if (!cur) {
      into.set(name, { ...rule });
      continue;
    }
    const intentions = combine(cur.intentions, rule.intentions);
    into.set(name, {
      policy: combine(cur.policy, rule.policy)!,
      ...(intentions ? { intentions } : {}),
    });
  }
}

/** The rule set of a token with several policies. */
export function mergeRuleSets(sets: readonly AclRuleSet[]): AclRuleSet {
  const out = emptyRuleSet();
  for (const s of sets) {
    for (const r of NAMED_RESOURCES) {
      for (const kind of ['exact', 'prefix'] as const) {
        const from = s[kind][r];
        if (!from) continue;
        mergeMaps((out[kind][r] ??= new Map()), from);
      }
    }
    for (const g of GLOBAL_RESOURCES) {
      const v = combine(out.global[g], s.global[g]);
      if (v) out.global[g] = v;
    }
  }
  return out;
}

/** The rule that governs `name`: exact first, else the longest prefix. */
export function governingRule(
  set: AclRuleSet,
  resource: NamedResource,
  name: string,
): AclRule | undefined {
  const exact = set.exact[resource]?.get(name);
  if (exact) return exact;
  let best: AclRule | undefined;
  let bestLength = -1;
  for (const [prefix, rule] of set.prefix[resource] ?? []) {
    if (name.startsWith(prefix) && prefix.length > bestLength) {
      best = rule;
      bestLength = prefix.length;
    }
  }
  return best;
}

function grants(d: Disposition | undefined, access: Access, defaultAllow: boolean): boolean {
  if (d === undefined) return defaultAllow;
  return RANK[d] >= NEED[access];
}

export function allows(
  set: AclRuleSet,
  resource: NamedResource,
  name: string,
  access: Access,
  defaultAllow: boolean,
): boolean {
  return grants(governingRule(set, resource, name)?.policy, access, defaultAllow);
}

export function allowsGlobal(
  set: AclRuleSet,
  resource: GlobalResource,
  access: Access,
  defaultAllow: boolean,
): boolean {
  return grants(set.global[resource], access, defaultAllow);
}

/** Intention access for a destination: the service rule's `intentions`, else read if it may read the service. */
export function allowsIntentions(
  set: AclRuleSet,
  destination: string,
  access: 'read' | 'write',
  defaultAllow: boolean,
): boolean {
  const rule = governingRule(set, 'service', destination);
  if (!rule) return defaultAllow;
  const d =
    rule.intentions ??
    (rule.policy === 'deny' ? 'deny' : RANK[rule.policy] >= 1 ? 'read' : undefined);
  return grants(d, access, defaultAllow);
}
