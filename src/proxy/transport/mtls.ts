/**
 * Client-side mTLS to another service's proxy: present our leaf, trust only the mesh roots, and
 * accept the server only if it proves exactly the destination's SPIFFE identity; any other
 * identity aborts the handshake before a byte of the request is sent.
 */
import type { ConnectionOptions } from 'node:tls';
import type { ProxyPlan, UpstreamPlan } from '../plan.js';
import { REASON, type Reason } from '../reasons.js';
import { uriSans } from './identity.js';

export function mtlsOptions(plan: ProxyPlan, upstream: UpstreamPlan): ConnectionOptions {
  return {
    cert: plan.tls.certChain,
    key: plan.tls.key,
    ca: plan.tls.roots,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      const uris = uriSans(cert);
      if (uris.length === 1 && uris[0] === upstream.identity) return undefined;
      const err: Error & { reason?: Reason } = new Error(
        `server presented ${uris.join(', ') || 'no SPIFFE id'}, expected ${upstream.identity}`,
      );
      err.reason = REASON.upstreamIdentity;
      return err;
    },
  };
}
