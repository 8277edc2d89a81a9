/** Authorization for catalog routes: the request's token -> Authorizer, and the refusals. */
import type { FastifyRequest } from 'fastify';
import { requestToken } from '../../httpkit/consul-http.js';
import {
  permissionDenied,
  requireAllowed,
  type Access,
  type Authorizer,
  type GlobalResource,
} from '../../policy/index.js';
import type { CatalogContext } from './context.js';

export function authz(ctx: CatalogContext, req: FastifyRequest): Authorizer {
  return ctx.acl.resolve(requestToken(req));
}

export const denied = permissionDenied;
export const requireNamed = requireAllowed;

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
