/**
 * How an agent decides its local API's requests: it asks the servers once per token what that
 * token may do (GET /v1/internal/trellis/acl/authorizer) and keeps the answer for `ttlMs`, as
 * Consul agents cache resolved tokens (token_ttl, 30s). When the servers cannot be reached, a
 * cached answer keeps serving (Consul's "extend-cache" down policy); a token never seen before
 * is refused, since nothing vouches for it, unless the servers last said ACLs are off: then
 * every token is ignored (the servers answer "allow everything" for any token), as Consul does.
 */
import type { TrellisClient } from '../../client/index.js';
import { MeshError, type Clock } from '../../core/index.js';
import {
  authorizerFromResolved,
  type Authorizer,
  type ResolvedAuthorizer,
} from '../../policy/index.js';

export type TokenResolver = (secret: string) => Promise<Authorizer>;

interface Entry {
  authz: Authorizer;
  fetchedAt: number;
}

const MAX_ENTRIES = 4096;

export function remoteTokenResolver(
  client: TrellisClient,
  clock: Clock,
  ttlMs = 30_000,
): TokenResolver {
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<Authorizer>>();
  /** The servers' last answer when it said ACLs are off. */
  let disabled: Authorizer | undefined;
  return async (secret) => {
    const hit = cache.get(secret);
    const now = clock.now();
    if (hit && now - hit.fetchedAt < ttlMs) return hit.authz;
    const pending = inflight.get(secret);
    if (pending) return pending;
    const p = (async () => {
      try {
        const r = await client.request({
          method: 'GET',
          path: '/v1/internal/trellis/acl/authorizer',
          // Spelled out: a request without a header would go with the agent's own token.
          headers: { 'x-consul-token': secret || 'anonymous' },
        });
        const resolved = r.body as ResolvedAuthorizer;
        const authz = authorizerFromResolved(resolved);
        disabled = resolved.ACLsDisabled ? authz : undefined;
        if (cache.size >= MAX_ENTRIES) cache.clear();
        cache.set(secret, { authz, fetchedAt: clock.now() });
        return authz;
      } catch (err) {
        if (err instanceof MeshError && err.status === 403) {
          cache.delete(secret);
          throw err;
        }
        if (hit) return hit.authz;
        if (disabled) return disabled;
        throw new MeshError(
          'MESH_ERR_ACL_UNAVAILABLE',
          'system',
          'cannot check the token: no server reachable and no cached answer',
          { status: 503, cause: err },
        );
      } finally {
        inflight.delete(secret);
      }
    })();
    inflight.set(secret, p);
    return p;
  };
}
