/**
 * Authorization for catalog routes: the request's token -> Authorizer, and one way to refuse.
 * The 403 names the token's accessor (never its secret) and the permission it lacks, as Consul
 * 1.12+ does, so an operator can fix the policy without guessing.
 */
import type { FastifyRequest } from 'fastify';
import { MeshError } from '../../core/index.js';
import { requestToken } from '../../httpkit/consul-http.js';
import type { Access, Authorizer, GlobalResource, NamedResource } from '../../policy/index.js';
import type { CatalogContext } from './context.js';

export function authz(ctx: CatalogContext, req: FastifyRequest): Authorizer {
  return ctx.acl.resolve(requestToken(req));
}

export function denied(a: Authorizer, permission: string, name?: string): MeshError {
  const who = a.accessor ? `token with AccessorID '${a.accessor}'` : 'token';
  const on = name === undefined ? '' : ` on "${name}"`;
  return new MeshError(
    'MESH_ERR_PERMISSION_DENIED',
    'user',
    `Permission denied: ${who} lacks permission '${permission}'${on}`,
    { status: 403 },
  );
}

export function requireNamed(
  a: Authorizer,
  resource: NamedResource,
  name: string,
  access: Access,
): void {
  if (!a.allowed(resource, name, access)) throw denied(a, `${resource}:${access}`, name);
}

export function requireGlobal(a: Authorizer, resource: GlobalResource, access: Access): void {
  if (!a.global(resource, access)) throw denied(a, `${resource}:${access}`);
}

export function requireIntention(
  a: Authorizer,
  destination: string,
  access: 'read' | 'write',
): void {
  if (!a.intention(destination, access)) throw denied(a, `intention:${access}`, destination);
}
