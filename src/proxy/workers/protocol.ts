/**
 * Messages between the agent (the cluster primary) and its proxy workers. Plans are sent whole
 * to every worker; each worker runs the same ServiceProxy per sidecar on listening sockets the
 * workers share, and answers every request with its sequence number.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { ProxyPlan } from '../plan.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type ToWorker =
  | { t: 'plan'; seq: number; id: string; plan: ProxyPlan }
  | { t: 'stop'; seq: number; id: string }
  /** Stop accepting, let open exchanges finish (at most timeoutMs), then stop. */
  | { t: 'drain'; seq: number; id: string; timeoutMs: number }
  | { t: 'metrics'; seq: number };

/** Why a plan could not be applied (a ListenError keeps its fields). */
export interface PlanFailure {
  message: string;
  listen?: { address: string; port: number; code: string | undefined; detail: string };
}

export type FromWorker =
  | { t: 'ready' }
  /** `served`: the plan the worker's proxy serves afterwards (null: none). */
  | { t: 'done'; seq: number; served: ProxyPlan | null; error?: PlanFailure }
  /** A drain ended: `cut` connections were still open at its time limit. */
  | { t: 'drained'; seq: number; cut: number }
  | { t: 'metrics'; seq: number; json: MetricsJson }
  | { t: 'appDown'; id: string };

/**
 * Messages from the agent to the data-plane supervisor (`trellis proxy`) on its unix socket:
 * `hello` first, then what the agent would send its own workers (the supervisor sends each
 * one to every worker and answers once).
 */
/**
 * The data-plane socket's protocol. The supervisor outlives agent upgrades, so an agent of a
 * newer release may meet an older supervisor: a change that an older peer would misread must
 * raise this number, and peers of different numbers refuse each other.
 */
export const DATA_PLANE_PROTOCOL = 1;

export type ToDataPlane =
  | { t: 'hello'; version: string; protocol: number }
  | Exclude<ToWorker, { t: 'metrics' }>
  | { t: 'metrics'; seq: number };

export type FromDataPlane =
  /** The plans the data plane serves now: a restarted agent takes them over. */
  | { t: 'welcome'; pid: number; version: string; served: { id: string; plan: ProxyPlan }[] }
  /** Another agent holds the data plane; this connection is closed. */
  | { t: 'busy'; message: string }
  /** The agent speaks another protocol; this connection is closed. */
  | { t: 'refused'; message: string }
  | Extract<FromWorker, { t: 'done' | 'drained' | 'appDown' }>
  /** Every worker's metrics. */
  | { t: 'metrics'; seq: number; json: MetricsJson[] }
  /** The supervisor is being stopped: the agent drains the host (catalog first), then exits. */
  | { t: 'drainRequested' };
