/**
 * An Authorizer answers "may this token do X?" for one resolved token: its policies' rule sets,
 * its service and node identities merged into one rule set, over the cluster's default policy.
 * Every endpoint asks through this one interface, so the direct endpoint and the txn path decide
 * alike. Pure: building one costs a merge; callers cache it per token.
 */
import { AccessDeniedError } from '../core/errors.js';
import {
  allows,
  allowsGlobal,
  allowsIntentions,
  emptyRuleSet,
  mergeRuleSets,
  type Access,
  type AclRule,
  type AclRuleSet,
  type GlobalResource,
  type NamedResource,
} from './acl.js';

export type DefaultPolicy = 'allow' | 'deny';

export interface Authorizer {
  /** The token's accessor id ('' for the server's own internal token). */
  readonly accessor: string;
  readonly management: boolean;
  /** The cluster's default policy this answer was made under. */
  readonly defaultPolicy: DefaultPolicy;
  allowed(resource: NamedResource, name: string, access: Access): boolean;
  global(resource: GlobalResource, access: Access): boolean;
  intention(destination: string, access: 'read' | 'write'): boolean;
  /** Write on `prefix` and on everything under it (recursive KV delete, delete-tree). */
  writePrefix(resource: NamedResource, prefix: string): boolean;
}

export interface ServiceIdentitySpec {
  ServiceName: string;
  Datacenters?: string[];
}

export interface NodeIdentitySpec {
  NodeName: string;
  Datacenter: string;
}

const rule = (policy: AclRule['policy'], intentions?: AclRule['intentions']): AclRule =>
  intentions ? { policy, intentions } : { policy };

/**
 * A service identity, as Consul synthesizes it: write on the service and its sidecar, read on
 * every service and node (to discover upstreams).
 */
export function serviceIdentityRules(service: string): AclRuleSet {
  const set = emptyRuleSet();
  set.exact.service = new Map([
    [service, rule('write')],
    [`${service}-sidecar-proxy`, rule('write')],
  ]);
  set.prefix.service = new Map([['', rule('read')]]);
  set.prefix.node = new Map([['', rule('read')]]);
  return set;
}

/** A node identity: write on the node (register it, its checks, heartbeats), read on services. */
export function nodeIdentityRules(node: string): AclRuleSet {
  const set = emptyRuleSet();
  set.exact.node = new Map([[node, rule('write')]]);
  set.exact.agent = new Map([[node, rule('read')]]);
  set.exact.session = new Map([[node, rule('write')]]);
  set.prefix.service = new Map([['', rule('read')]]);
  return set;
}

export interface AuthorizerSpec {
  accessor: string;
  management: boolean;
  ruleSets: readonly AclRuleSet[];
  defaultPolicy: DefaultPolicy;
}

export function buildAuthorizer(spec: AuthorizerSpec): Authorizer {
  if (spec.management) return managementAuthorizer(spec.accessor, spec.defaultPolicy);
  const set = mergeRuleSets(spec.ruleSets);
  const dflt = spec.defaultPolicy === 'allow';
  return {
    accessor: spec.accessor,
    management: false,
    defaultPolicy: spec.defaultPolicy,
    allowed: (resource, name, access) => allows(set, resource, name, access, dflt),
    global: (resource, access) => allowsGlobal(set, resource, access, dflt),
    intention: (destination, access) => allowsIntentions(set, destination, access, dflt),
    writePrefix(resource, prefix) {
      if (!allows(set, resource, prefix, 'write', dflt)) return false;
      // Any narrower rule that does not grant write makes part of the subtree unwritable.
      for (const kind of ['exact', 'prefix'] as const) {
        for (const [name, r] of set[kind][resource] ?? []) {
          if (name.length > prefix.length && name.startsWith(prefix) && r.policy !== 'write')
            return false;
        }
      }
      return true;
    },
  };
}

export function managementAuthorizer(
  accessor: string,
  defaultPolicy: DefaultPolicy = 'deny',
): Authorizer {
  return {
    accessor,
    management: true,
    defaultPolicy,
    allowed: () => true,
    global: () => true,
    intention: () => true,
    writePrefix: () => true,
  };
}

/** The serializable form of a resolved token, sent from servers to agents. */
export interface ResolvedAuthorizer {
  AccessorID: string;
  Management: boolean;
  DefaultPolicy: DefaultPolicy;
  /** Set when the servers run with ACLs off: every token is ignored and everything allowed. */
  ACLsDisabled?: true;
  /** The merged rule set: [resource, kind, name, policy, intentions?] rows plus globals. */
  Rules: {
    named: [NamedResource, 'exact' | 'prefix', string, AclRule['policy'], AclRule['intentions']?][];
    global: [GlobalResource, AclRule['policy']][];
  };
}

export function serializeRuleSet(set: AclRuleSet): ResolvedAuthorizer['Rules'] {
  const named: ResolvedAuthorizer['Rules']['named'] = [];
  for (const kind of ['exact', 'prefix'] as const) {
    for (const [resource, map] of Object.entries(set[kind]) as [
      NamedResource,
      Map<string, AclRule>,
    ][]) {
      for (const [name, r] of map) {
        named.push(
          r.intentions
            ? [resource, kind, name, r.policy, r.intentions]
            : [resource, kind, name, r.policy],
        );
      }
    }
  }
  const global = Object.entries(set.global) as [GlobalResource, AclRule['policy']][];
  return { named, global };
}

export function deserializeRuleSet(rules: ResolvedAuthorizer['Rules']): AclRuleSet {
  const set = emptyRuleSet();
  for (const [resource, kind, name, policy, intentions] of rules.named) {
    (set[kind][resource] ??= new Map()).set(name, rule(policy, intentions));
  }
  for (const [g, d] of rules.global) set.global[g] = d;
  return set;
}

export function authorizerFromResolved(r: ResolvedAuthorizer): Authorizer {
  return buildAuthorizer({
    accessor: r.AccessorID,
    management: r.Management,
    ruleSets: [deserializeRuleSet(r.Rules)],
    defaultPolicy: r.DefaultPolicy,
  });
}

/**
 * The one 403 every endpoint answers: it names the token's accessor (never its secret) and the
 * permission it lacks, as Consul 1.12+ does, so an operator can fix the policy without guessing.
 * `why` says why that permission is needed when it is not obvious (a proxy's destination).
 */
export function permissionDenied(
  a: Authorizer,
  permission: string,
  name?: string,
  why?: string,
): AccessDeniedError {
  const who = a.accessor ? `token with AccessorID '${a.accessor}'` : 'token';
  const on = name === undefined ? '' : ` on "${name}"`;
  return new AccessDeniedError(
    `Permission denied: ${who} lacks permission '${permission}'${on}${why ? ` (${why})` : ''}`,
    { accessor: a.accessor, permission, resource: name ?? '' },
  );
}

/** Throws permissionDenied unless `a` may `access` the named resource. */
export function requireAllowed(
  a: Authorizer,
  resource: NamedResource,
  name: string,
  access: Access,
): void {
  if (!a.allowed(resource, name, access)) throw permissionDenied(a, `${resource}:${access}`, name);
}

/** A service instance as far as ACLs care: its name, and the service it fronts if any. */
export interface InstanceAclView {
  /** The instance's service name. */
  name: string;
  Kind?: string | undefined;
  Proxy?: { DestinationServiceName?: string | undefined } | undefined;
}

/**
 * The service names a token must be able to write to register, change or remove an instance:
 * its own name, and for anything that names a destination (a connect-proxy, or a gateway
 * carrying a Proxy block) that destination too. A proxy receives the destination's traffic and
 * its certificate, so registering one is acting for the destination (Consul CVE-2021-38698).
 */
export function instanceWriteNames(svc: InstanceAclView): string[] {
  const dest = svc.Proxy?.DestinationServiceName;
  return dest && dest !== svc.name ? [svc.name, dest] : [svc.name];
}

/** Throws permissionDenied unless `a` may write every name instanceWriteNames lists. */
export function requireInstanceWrite(a: Authorizer, svc: InstanceAclView): void {
  if (a.management) return;
  for (const n of instanceWriteNames(svc)) {
    if (a.allowed('service', n, 'write')) continue;
    const why =
      n === svc.name
        ? undefined
        : `the destination of ${svc.Kind || 'service'} "${svc.name}": registering, changing or ` +
          'removing a proxy or gateway for a service needs service:write on that service too';
    throw permissionDenied(a, 'service:write', n, why);
  }
}
