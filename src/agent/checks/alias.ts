/**
 * Alias checks, as Consul's agent runs them for a service on its own node: the check mirrors
 * the health of another local service, meaning that service's checks and the node's own checks
 * (node maintenance included), the worst status winning. Nothing is probed; the scheduler
 * recomputes the result whenever local state changes. The agent gives every sidecar proxy one
 * that aliases the service the proxy fronts, so no one is routed to a proxy whose application
 * is down. Aliasing a service on another node (Consul's AliasNode) is not supported.
 */
import type { HealthStatus } from '../../api/index.js';
import type { CheckResult } from './types.js';

/** One check the aliased service's health depends on. */
export interface AliasedCheck {
  Name: string;
  Status: HealthStatus;
  Output: string;
}

/** What the agent knows about the aliased service right now. */
export interface AliasTarget {
  /** This agent's node name, for the "not found" message. */
  node: string;
  /** Whether the service is registered on this agent. */
  exists: boolean;
  /** The service's checks and the node-level checks. */
  checks: readonly AliasedCheck[];
}

/** Looks up the aliased service (by id) in the agent's local state. */
export type AliasSource = (serviceID: string) => AliasTarget;

/** The alias check's result, with Consul's outputs. */
export function aliasResult(serviceID: string, target: AliasTarget): CheckResult {
  if (!target.exists) {
    return {
      status: 'critical',
      output: `Service ${serviceID} could not be found on node ${target.node}`,
    };
  }
  let status: HealthStatus = 'passing';
  let output = 'No checks found.';
  for (const c of target.checks) {
    if (c.Status === 'passing') {
      if (status === 'passing') output = 'All checks passing.';
      continue;
    }
    status = c.Status;
    output = `Aliased check "${c.Name}" failing: ${c.Output}`;
    // A critical check decides; a warning may still be outdone by a later critical one.
    if (status === 'critical') break;
  }
  return { status, output };
}
