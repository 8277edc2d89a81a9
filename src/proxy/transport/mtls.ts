/**
 * Client-side mTLS to another service's proxy: present our leaf, trust only the mesh roots, and
 * accept the server only if it proves exactly the destination's SPIFFE identity; any other
 * identity aborts the handshake before a byte of the request is sent.
 */
import type { ConnectionOptions } from 'node:tls';
import { trustDomainsOf, type ProxyPlan, type UpstreamPlan } from '../plan.js';
import { REASON, type Reason } from '../reasons.js';
import { checkPeer } from './identity.js';

/** A handshake refused because the server is not the destination; `presented` says who it was. */
export interface IdentityError extends Error {
  reason: Reason;
  presented: string;
}

export function mtlsOptions(plan: ProxyPlan, upstream: UpstreamPlan): ConnectionOptions {
  return {
    cert: plan.tls.certChain,
    key: plan.tls.key,
    ca: plan.tls.roots,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      const peer = checkPeer(cert, 'server', trustDomainsOf(plan));
      if (peer.ok && peer.uri === upstream.identity) return undefined;
      const presented = peer.ok ? peer.uri : peer.why;
      const err = new Error(
        `server presented ${presented}, expected ${upstream.identity}`,
      ) as IdentityError;
      err.reason = REASON.upstreamIdentity;
      err.presented = presented;
      return err;
    },
  };
}
