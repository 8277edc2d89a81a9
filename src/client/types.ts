/**
 * Response shapes the client decodes that src/api does not name on its own.
 */
import type { AgentService, Member, Node } from '../api/index.js';

/** GET /v1/catalog/node/:node. */
export interface CatalogNode {
  Node: Node;
  Services: Record<string, AgentService>;
}

/** GET /v1/agent/self; `Config` is the stable part. */
export interface AgentSelf {
  Config: {
    Datacenter: string;
    NodeName: string;
    NodeID?: string;
    Server?: boolean;
    Version?: string;
    [key: string]: unknown;
  };
  Member?: Member;
  Meta?: Record<string, string>;
  [key: string]: unknown;
}

/** The status a TTL check is set to by agent.ttl(). */
export type TtlStatus = 'pass' | 'warn' | 'fail';

/** A health state as /v1/health/state/:state accepts it. */
export type HealthState = 'any' | 'passing' | 'warning' | 'critical';
