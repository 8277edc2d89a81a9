/**
 * Turns the secret a request carries into an Authorizer, from the ACL table in the state.
 *
 *   no secret          -> the anonymous token
 *   unknown or expired -> 403 "ACL not found" (as Consul answers)
 *   join token         -> 403: it is good only for trading at the join endpoint
 *   the server's own   -> management (the in-process agent of the server's node)
 *   ACLs disabled      -> management for every request, whatever it carries (Consul with
 *                         ACLs off ignores tokens; clients often send one anyway)
 *
 * Authorizers are cached per secret until the next ACL write, so a request pays one hash and
 * one map lookup. Policies' rules are parsed once per policy version.
 */
import { createHash } from 'node:crypto';
import { AccessDeniedError, type MeshError, type Clock } from '../../core/index.js';
import { parseAclRules } from '../../config/acl-rules.js';
import {
  buildAuthorizer,
  managementAuthorizer,
  nodeIdentityRules,
  serializeRuleSet,
  serviceIdentityRules,
  mergeRuleSets,
  type AclRuleSet,
  type Authorizer,
  type DefaultPolicy,
  type ResolvedAuthorizer,
} from '../../policy/index.js';
import {
  ANONYMOUS_ACCESSOR,
  GLOBAL_MANAGEMENT_ID,
  type AclPolicyRow,
  type AclTokenRow,
} from '../state/acl-table.js';
import { K } from '../state/index-table.js';
import type { StateStore } from '../state/state-store.js';

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A secret that matches no live token: refused (and audited) without naming any accessor. */
export function aclNotFound(): MeshError {
  return new AccessDeniedError(
    'ACL not found',
    { accessor: '', permission: 'acl:token', resource: '' },
    'MESH_ERR_ACL_NOT_FOUND',
  );
}

interface Resolved {
  authz: Authorizer;
  token: AclTokenRow | undefined;
  /** Expiry (ms) after which the cached answer must not be used. */
  until: number;
}

export interface ResolverOptions {
  defaultPolicy: DefaultPolicy;
  /** False: ACLs are off (default true). */
  enabled?: boolean;
  datacenter: string;
  clock: Clock;
  /** Secret of the server's own in-process agent. */
  internalSecret?: string;
}

/** Everything allowed, for every secret: the answer while ACLs are off. */
const DISABLED: Resolved = {
  authz: managementAuthorizer('', 'allow'),
  token: undefined,
  until: Number.POSITIVE_INFINITY,
};

export class AclResolver {
  /** 'allow' whenever ACLs are off (intentions then default to allow too, as in Consul). */
  readonly defaultPolicy: DefaultPolicy;
  readonly enabled: boolean;
  readonly #state: StateStore;
  readonly #opts: ResolverOptions;
  readonly #internalHash: string | undefined;
  #cache = new Map<string, Resolved>();
  #cacheAt = -1;
  #rules = new Map<string, { modify: number; rules: AclRuleSet }>();

  constructor(state: StateStore, opts: ResolverOptions) {
    this.#state = state;
    this.#opts = opts;
    this.enabled = opts.enabled ?? true;
    this.defaultPolicy = this.enabled ? opts.defaultPolicy : 'allow';
    this.#internalHash = opts.internalSecret ? hashSecret(opts.internalSecret) : undefined;
  }

  /** The authorizer for a request's secret ('' = none given). */
  resolve(secret: string): Authorizer {
    return this.#resolved(secret).authz;
  }

  /**
   * The authorizer for a secret known only by its SHA-256 (a prepared query's captured token);
   * throws "ACL not found" once that token is gone.
   */
  resolveHash(hash: string): Authorizer {
    return this.#resolvedKey(hash).authz;
  }

  /** The token row behind a secret (undefined for the anonymous and internal tokens). */
  token(secret: string): AclTokenRow | undefined {
    return this.#resolved(secret).token;
  }

  /** What an agent needs to decide for this secret itself. */
  describe(secret: string): ResolvedAuthorizer {
    const { authz, token } = this.#resolved(secret);
    return {
      AccessorID: authz.accessor,
      Management: authz.management,
      DefaultPolicy: this.defaultPolicy,
      ...(this.enabled ? {} : { ACLsDisabled: true as const }),
      Rules: serializeRuleSet(
        authz.management || !token ? mergeRuleSets([]) : this.#ruleSet(token),
      ),
    };
  }

  #resolved(secret: string): Resolved {
    return this.#resolvedKey(secret === '' || secret === 'anonymous' ? '' : hashSecret(secret));
  }

  #resolvedKey(key: string): Resolved {
    if (!this.enabled) return DISABLED;
    const aclIndex = this.#state.indexes.get(K.acl);
    if (aclIndex !== this.#cacheAt) {
      this.#cache = new Map();
      this.#cacheAt = aclIndex;
    }
    const now = this.#opts.clock.now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit;
    const r = this.#compute(key, now);
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(key, r);
    return r;
  }

  #compute(hash: string, now: number): Resolved {
    const forever = Number.POSITIVE_INFINITY;
    if (hash !== '' && hash === this.#internalHash)
      return {
        authz: managementAuthorizer('', this.defaultPolicy),
        token: undefined,
        until: forever,
      };
    const acl = this.#state.acl;
    const token = hash === '' ? acl.tokens.get(ANONYMOUS_ACCESSOR) : acl.tokenBySecretHash(hash);
    if (!token || token.Join) throw aclNotFound();
    let until = forever;
    if (token.ExpirationTime) {
      until = Date.parse(token.ExpirationTime);
      if (until <= now) throw aclNotFound();
    }
    if (token.Policies.includes(GLOBAL_MANAGEMENT_ID))
      return { authz: managementAuthorizer(token.AccessorID, this.defaultPolicy), token, until };
    const authz = buildAuthorizer({
      accessor: token.AccessorID,
      management: false,
      ruleSets: [this.#ruleSet(token)],
      defaultPolicy: this.defaultPolicy,
    });
    return { authz, token, until };
  }

  #ruleSet(token: AclTokenRow): AclRuleSet {
    const sets: AclRuleSet[] = [];
    for (const id of token.Policies) {
      const p = this.#state.acl.policies.get(id);
      if (p && (p.Datacenters.length === 0 || p.Datacenters.includes(this.#opts.datacenter)))
        sets.push(this.#policyRules(p));
    }
    for (const s of token.ServiceIdentities) {
      if (!s.Datacenters?.length || s.Datacenters.includes(this.#opts.datacenter))
        sets.push(serviceIdentityRules(s.ServiceName));
    }
    for (const n of token.NodeIdentities) {
      if (n.Datacenter === this.#opts.datacenter) sets.push(nodeIdentityRules(n.NodeName));
    }
    return mergeRuleSets(sets);
  }

  #policyRules(p: AclPolicyRow): AclRuleSet {
    const hit = this.#rules.get(p.ID);
    if (hit && hit.modify === p.ModifyIndex) return hit.rules;
    // Rules were checked when the policy was written; a policy that stopped parsing grants nothing.
    const parsed = parseAclRules(p.Rules, `policy ${p.Name}`);
    const rules = parsed.errors.length === 0 ? parsed.rules : mergeRuleSets([]);
    this.#rules.set(p.ID, { modify: p.ModifyIndex, rules });
    return rules;
  }
}
