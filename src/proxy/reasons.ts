/**
 * Why a proxy ended a connection or answered a request itself: one stable code per cause, the
 * same in the access log, the `response_flags` metric label and the `x-trellis-reason` header
 * (Envoy's flags where Envoy has one).
 */
export const REASON = {
  /** The caller is not allowed by intentions (or has no acceptable identity). */
  unauthorized: 'UAEX',
  /** No healthy endpoint for the upstream. */
  noHealthyUpstream: 'UH',
  /** Every endpoint tried refused or failed the connection or handshake. */
  upstreamConnectFailure: 'UF',
  /** The upstream presented an identity other than the destination's. */
  upstreamIdentity: 'UI',
  /**
   * The local application could not be reached: nothing of the request reached it, so a
   * caller may send it to another endpoint whatever its method.
   */
  localAppUnreachable: 'LF',
  /** The local application failed the request after (part of) it was sent: not retried. */
  localAppReset: 'LR',
  /** No plan yet, or the plan's certificate expired: fail closed. */
  noPlan: 'NP',
  /** Idle too long. */
  idleTimeout: 'IT',
  /** The request is malformed or ambiguous (Envoy's downstream protocol error). */
  badRequest: 'DPE',
  /** The client did not send its request head in time (slowloris). */
  downstreamTimeout: 'DT',
} as const;

export type Reason = (typeof REASON)[keyof typeof REASON];
