/**
 * Endpoint choice for an upstream: the balancer's pick first, then the remaining endpoints in
 * ring order as fallbacks for connection failures.
 *
 *   round_robin    one after another (the default, as in Envoy and Consul)
 *   random         uniformly at random
 *   least_request  two random choices, the one with fewer requests (or connections) in
 *                  flight wins: Envoy's P2C, near-optimal without scanning every endpoint
 */
import type { Endpoint, UpstreamPlan } from './plan.js';

export interface BalancerState {
  /** Round-robin position. */
  next: number;
}

/** Requests (or connections) in flight to an endpoint. */
export type LoadOf = (ep: Endpoint) => number;

/**
 * The position of the balancer's pick among `u.endpoints`; fallbacks follow it in ring order
 * (`endpointAt`), so no per-request array is made.
 */
export function pickFirst(u: UpstreamPlan, state: BalancerState, load: LoadOf): number {
  const eps = u.endpoints;
  const n = eps.length;
  if (n <= 1) return 0;
  if (u.balancer === 'random') return Math.floor(pseudoRandom() * n);
  if (u.balancer === 'least_request') {
    const a = Math.floor(pseudoRandom() * n);
    let b = Math.floor(pseudoRandom() * (n - 1));
    if (b >= a) b++;
    return load(eps[b]!) < load(eps[a]!) ? b : a;
  }
  return state.next++ % n;
}

/** The i-th endpoint to try when the balancer picked `first`. */
export function endpointAt(u: UpstreamPlan, first: number, i: number): Endpoint {
  return u.endpoints[(first + i) % u.endpoints.length]!;
}

/** Spreads "random" choices without Math.random (banned outside core): a xorshift stream. */
let seed = 0x2545f491;
function pseudoRandom(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}

export const endpointKey = (ep: Endpoint): string => `${ep.address}|${ep.port}`;
