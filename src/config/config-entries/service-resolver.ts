/** service-resolver: subsets, redirects, failover and load balancing. */
import { compileFilter } from '../../api/filter.js';
import { isMeshError } from '../../core/errors.js';
import {
  ENTERPRISE,
  err,
  Fields,
  indexPath,
  isUnset,
  keyPath,
  NO_PEERING,
  prune,
  type Shape,
  userMap,
} from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  datacenterName,
  header,
  serviceName,
  SUBSET_RE,
  SUBSET_RULE,
  subsetName,
} from './shared.js';
import type {
  FailoverTarget,
  HashPolicy,
  LoadBalancer,
  LoadBalancerPolicy,
  ServiceResolverEntry,
  ServiceResolverFailover,
  ServiceResolverRedirect,
  ServiceResolverSubset,
} from './types.js';

export const REDIRECT_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenter'],
  unsupported: { Peer: NO_PEERING, SamenessGroup: ENTERPRISE },
  tenancy: true,
};

export const FAILOVER_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenters', 'Targets'],
  unsupported: { Policy: ENTERPRISE, SamenessGroup: ENTERPRISE },
  tenancy: true,
};

export const TARGET_SHAPE: Shape = {
  fields: ['Service', 'ServiceSubset', 'Datacenter'],
  unsupported: { Peer: NO_PEERING },
  tenancy: true,
};

export const LOAD_BALANCER_SHAPE: Shape = {
  fields: ['Policy', 'RingHashConfig', 'LeastRequestConfig', 'HashPolicies'],
};

export const HASH_POLICY_SHAPE: Shape = {
  fields: ['Field', 'FieldValue', 'CookieConfig', 'SourceIP', 'Terminal'],
};

export const LB_POLICIES: readonly LoadBalancerPolicy[] = [
  'round_robin',
  'least_request',
  'ring_hash',
  'maglev',
  'random',
];

export function hashPolicy(h: Fields): HashPolicy {
  const field = h.oneOf<NonNullable<HashPolicy['Field']>>('Field', [
    'header',
    'cookie',
    'query_parameter',
  ]);
  const value = h.str('FieldValue');
  const sourceIP = h.bool('SourceIP') || undefined;
  if (field && sourceIP) throw err(h.path, 'set either Field or SourceIP, not both');
  if (!field && !sourceIP) {
    if (value !== undefined) throw h.err('Field', 'required when FieldValue is set');
    throw err(h.path, 'set one of Field or SourceIP');
  }
  if (field && value === undefined) throw h.err('FieldValue', 'required when Field is set');
  const c = h.obj('CookieConfig', { fields: ['Session', 'TTL', 'Path'] });
  if (c && field !== 'cookie') throw h.err('CookieConfig', 'only allowed with Field "cookie"');
  const session = c?.bool('Session') || undefined;
  const ttl = c?.duration('TTL');
  if (c && session && ttl !== undefined)
    throw err(c.path, 'Session and TTL are mutually exclusive');
  return prune({
    Field: field,
    FieldValue: value,
    CookieConfig: c ? prune({ Session: session, TTL: ttl, Path: c.str('Path') }) : undefined,
    SourceIP: sourceIP,
    Terminal: h.bool('Terminal') || undefined,
  });
}

export function loadBalancer(f: Fields): LoadBalancer | undefined {
  const lb = f.obj('LoadBalancer', LOAD_BALANCER_SHAPE);
  if (!lb) return undefined;
  const policy = lb.oneOf('Policy', LB_POLICIES);
  const rh = lb.obj('RingHashConfig', { fields: ['MinimumRingSize', 'MaximumRingSize'] });
  if (rh && policy !== 'ring_hash')
    throw lb.err('RingHashConfig', 'only allowed with Policy "ring_hash"');
  const ringHash = rh
    ? prune({
        MinimumRingSize: rh.int('MinimumRingSize'),
        MaximumRingSize: rh.int('MaximumRingSize'),
      })
    : undefined;
  if (
    ringHash?.MinimumRingSize &&
    ringHash.MaximumRingSize &&
    ringHash.MinimumRingSize > ringHash.MaximumRingSize
  )
    throw err(
      rh!.path,
      `MinimumRingSize (${ringHash.MinimumRingSize}) is larger than MaximumRingSize (${ringHash.MaximumRingSize})`,
    );
  const lr = lb.obj('LeastRequestConfig', { fields: ['ChoiceCount'] });
  if (lr && policy !== 'least_request')
    throw lb.err('LeastRequestConfig', 'only allowed with Policy "least_request"');
  const raw = lb.list('HashPolicies') ?? [];
  if (raw.length && policy !== 'ring_hash' && policy !== 'maglev')
    throw lb.err('HashPolicies', 'only allowed with Policy "ring_hash" or "maglev"');
  const hashPolicies = raw.map((item, i) =>
    hashPolicy(Fields.of(item, indexPath(lb.at('HashPolicies'), i), HASH_POLICY_SHAPE)),
  );
  return prune({
    Policy: policy,
    RingHashConfig: ringHash,
    LeastRequestConfig: lr ? prune({ ChoiceCount: lr.int('ChoiceCount') }) : undefined,
    HashPolicies: hashPolicies.length ? hashPolicies : undefined,
  });
}

export const SERVICE_RESOLVER_SHAPE: Shape = {
  fields: [
    ...COMMON_FIELDS,
    'DefaultSubset',
    'Subsets',
    'Redirect',
    'Failover',
    'ConnectTimeout',
    'RequestTimeout',
    'LoadBalancer',
  ],
  unsupported: { PrioritizeByLocality: ENTERPRISE },
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function serviceResolver(f: Fields): ServiceResolverEntry {
  const head = header(f, 'service-resolver');
  const name = head.Name;
  const subsetPairs = (f.entries('Subsets') ?? []).map(
    ([key, raw]): [string, ServiceResolverSubset] => {
      const at = keyPath(f.at('Subsets'), key);
      if (!SUBSET_RE.test(key))
        throw err(
          at,
          `${JSON.stringify(key.slice(0, 64))} is not a valid subset name (${SUBSET_RULE})`,
        );
      const s = Fields.of(raw, at, { fields: ['Filter', 'OnlyPassing'] });
      const filter = s.str('Filter');
      if (filter !== undefined) {
        try {
          compileFilter(filter);
        } catch (e) {
          if (!isMeshError(e)) throw e;
          throw s.err('Filter', `bad filter for subset "${key}": ${e.message}`);
        }
      }
      return [key, prune({ Filter: filter, OnlyPassing: s.bool('OnlyPassing') || undefined })];
    },
  );
  const subsets = userMap(subsetPairs);
  const names = subsetPairs.map(([k]) => k);
  const hasSubset = (s: string): boolean => Object.hasOwn(subsets, s);
  const known = names.length ? ` (${names.join(', ')})` : ' (there are none)';

  // A redirecting resolver resolves nothing itself, so its own subsets could never be used.
  if (!isUnset(f.raw('Redirect')))
    for (const other of ['Subsets', 'DefaultSubset', 'Failover'])
      if (!isUnset(f.raw(other)))
        throw f.err(
          'Redirect',
          `cannot be combined with ${other}: a redirected service resolves nothing itself`,
        );

  const defaultSubset = subsetName(f, 'DefaultSubset');
  if (defaultSubset !== undefined && !hasSubset(defaultSubset))
    throw f.err('DefaultSubset', `"${defaultSubset}" is not one of the Subsets${known}`);

  let redirect: ServiceResolverRedirect | undefined;
  const r = f.obj('Redirect', REDIRECT_SHAPE);
  if (r) {
    redirect = prune({
      Service: serviceName(r, 'Service'),
      ServiceSubset: subsetName(r, 'ServiceSubset'),
      Datacenter: r.str('Datacenter') && datacenterName(r.at('Datacenter'), r.str('Datacenter')!),
    });
    if (!redirect.Service && !redirect.ServiceSubset && !redirect.Datacenter)
      throw f.err('Redirect', 'set at least one of Service, ServiceSubset or Datacenter');
    const toSelf = (redirect.Service ?? name) === name;
    if (toSelf && redirect.ServiceSubset && !redirect.Datacenter)
      throw r.err(
        'ServiceSubset',
        `"${name}" redirects, so it has no subsets of its own; name the Service that defines "${redirect.ServiceSubset}"`,
      );
    if (toSelf && !redirect.Datacenter) throw f.err('Redirect', `redirects "${name}" to itself`);
  }

  const failoverPairs = (f.entries('Failover') ?? []).map(
    ([key, raw]): [string, ServiceResolverFailover] => {
      const at = keyPath(f.at('Failover'), key);
      if (key !== '*' && !hasSubset(key))
        throw err(
          at,
          `there is no subset "${key}" to fail over from; use "*" or one of the Subsets${known}`,
        );
      const o = Fields.of(raw, at, FAILOVER_SHAPE);
      const ownSubset = (svc: string | undefined, sub: string | undefined, g: Fields): void => {
        if (sub !== undefined && (svc ?? name) === name && !hasSubset(sub))
          throw g.err('ServiceSubset', `"${sub}" is not one of the Subsets of "${name}"${known}`);
      };
      const dcs = o
        .strList('Datacenters')
        ?.map((dc, i) => datacenterName(indexPath(o.at('Datacenters'), i), dc));
      const targets = o.list('Targets')?.map((item, i): FailoverTarget => {
        const t = Fields.of(item, indexPath(o.at('Targets'), i), TARGET_SHAPE);
        const target = prune({
          Service: serviceName(t, 'Service'),
          ServiceSubset: subsetName(t, 'ServiceSubset'),
          Datacenter:
            t.str('Datacenter') && datacenterName(t.at('Datacenter'), t.str('Datacenter')!),
        });
        if (!target.Service && !target.ServiceSubset && !target.Datacenter)
          throw err(t.path, 'set at least one of Service, ServiceSubset or Datacenter');
        ownSubset(target.Service, target.ServiceSubset, t);
        return target;
      });
      const failover = prune({
        Service: serviceName(o, 'Service'),
        ServiceSubset: subsetName(o, 'ServiceSubset'),
        Datacenters: dcs?.length ? dcs : undefined,
        Targets: targets?.length ? targets : undefined,
      });
      if (failover.Targets && (failover.Service || failover.ServiceSubset || failover.Datacenters))
        throw o.err('Targets', 'cannot be combined with Service, ServiceSubset or Datacenters');
      if (
        !failover.Targets &&
        !failover.Service &&
        !failover.ServiceSubset &&
        !failover.Datacenters
      )
        throw err(at, 'set at least one of Service, ServiceSubset, Datacenters or Targets');
      ownSubset(failover.Service, failover.ServiceSubset, o);
      return [key, failover];
    },
  );

  return prune({
    ...head,
    DefaultSubset: defaultSubset,
    Subsets: subsetPairs.length ? subsets : undefined,
    Redirect: redirect,
    Failover: failoverPairs.length ? userMap(failoverPairs) : undefined,
    ConnectTimeout: f.duration('ConnectTimeout'),
    RequestTimeout: f.duration('RequestTimeout'),
    LoadBalancer: loadBalancer(f),
  });
}
