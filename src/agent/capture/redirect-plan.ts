/**
 * Merges every transparent sidecar's capture into the host's one RedirectPlan. Pure: users
 * are resolved to uids by the caller. A sidecar that cannot be honoured (its user shared with
 * another sidecar, its uid the agent's own) makes the whole plan fail: applying the rest
 * would silently leave that service's traffic uncaptured.
 */
import type { RedirectPlan } from '../nftables/ruleset.js';
import type { SidecarCapture } from './types.js';

export interface PlanContext {
  /** The agent's uid: its proxies' traffic is never captured. */
  proxyUid: number;
  /** uid of each capture user named by the captures (names and numeric strings). */
  uids: ReadonlyMap<string, number>;
  /** The capture cgroups that exist now (a cgroup that does not has no process to capture). */
  cgroups?: ReadonlySet<string>;
  /** The agent's DNS port on 127.0.0.1, when it serves DNS there. */
  dnsPort?: number;
  /** The agent's own listening ports: never redirected inbound. */
  agentPorts: number[];
}

/** A sidecar's captured destinations and exclusions, whoever its connections are selected by. */
function outboundOf(c: SidecarCapture): Omit<RedirectPlan['outbound'][number], 'uid' | 'cgroup'> {
  const s = c.settings;
  return {
    ...(s.excludeOutboundPorts.length ? { excludePorts: [...s.excludeOutboundPorts] } : {}),
    ...(s.excludeOutboundCidrs.length ? { excludeCidrs: [...s.excludeOutboundCidrs] } : {}),
    targets: c.outbound.flatMap((d) =>
      d.addresses.map((a) => ({ address: a.address, port: a.port, toPort: d.toPort })),
    ),
    vips: c.outbound.flatMap((d) => (d.vip ? [{ address: d.vip, toPort: d.toPort }] : [])),
  };
}

export type PlanResult = { plan: RedirectPlan } | { error: string };

export function buildRedirectPlan(
  captures: readonly SidecarCapture[],
  ctx: PlanContext,
): PlanResult {
  const sorted = [...captures].sort((a, b) => (a.sidecarId < b.sidecarId ? -1 : 1));
  const plan: RedirectPlan = {
    proxyUid: ctx.proxyUid,
    outbound: [],
    inbound: [],
    exclude: { inboundPorts: [...ctx.agentPorts], outboundPorts: [], outboundCidrs: [], uids: [] },
  };
  const owner = new Map<number, string>();
  const cgroupOwner = new Map<string, string>();
  let dns = false;
  for (const c of sorted) {
    const s = c.settings;
    // Port and network exclusions belong to the service's own captured user (below): one
    // service's exclusions must not switch off another's capture. Excluded uids are host-wide.
    plan.exclude.uids.push(...s.excludeUids);
    if (c.inbound && !s.excludeInboundPorts.includes(c.inbound.port))
      plan.inbound.push({ ...c.inbound });
    if (s.captureCgroup !== undefined) {
      const cg = s.captureCgroup;
      const other = cgroupOwner.get(cg);
      if (other !== undefined)
        return {
          error: `${c.sidecarId}: capture_cgroup "${cg}" is already captured for ${other}; give each service its own unit`,
        };
      cgroupOwner.set(cg, c.sidecarId);
      if (!ctx.cgroups?.has(cg)) continue;
      if (s.redirectDns) dns = true;
      plan.outbound.push({ cgroup: cg, ...outboundOf(c) });
      continue;
    }
    if (s.captureUser === undefined) continue;
    const uid = ctx.uids.get(s.captureUser);
    if (uid === undefined)
      return {
        error: `${c.sidecarId}: capture_user "${s.captureUser}": no such user on this host`,
      };
    if (uid === ctx.proxyUid)
      return {
        error: `${c.sidecarId}: capture_user "${s.captureUser}" is the agent's own user (uid ${uid}); its traffic cannot be captured without a loop`,
      };
    const other = owner.get(uid);
    if (other !== undefined)
      return {
        error: `${c.sidecarId}: capture_user "${s.captureUser}" (uid ${uid}) is already captured for ${other}; give each service its own user`,
      };
    owner.set(uid, c.sidecarId);
    if (s.redirectDns) dns = true;
    plan.outbound.push({ uid, ...outboundOf(c) });
  }
  // A uid one service excludes and another captures: whichever wins, one is silently wrong.
  for (const c of sorted)
    for (const x of c.settings.excludeUids) {
      const capturedFor = owner.get(x);
      if (capturedFor !== undefined && capturedFor !== c.sidecarId)
        return {
          error: `${c.sidecarId}: exclude_uids lists uid ${x}, which is captured for ${capturedFor}; remove one of the two`,
        };
    }
  if (dns && ctx.dnsPort !== undefined) plan.dns = { port: ctx.dnsPort };
  return { plan };
}
