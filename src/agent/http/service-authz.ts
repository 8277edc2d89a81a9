/**
 * What the agent's write endpoints ask of a token for a service: write on the instance's name
 * and, for a proxy, on the service it fronts (policy/authorizer.ts instanceWriteNames). One
 * place, so registering, replacing, removing, maintenance and check writes decide alike.
 */
import type { ServiceRegistration } from '../../api/index.js';
import { requireInstanceWrite, type Authorizer } from '../../policy/index.js';
import type { LocalService, LocalState } from '../local/local-state.js';
import { sidecarID } from '../local/sidecar.js';

/** Write on a registered local instance (and on its destination when it is a proxy). */
export function requireLocalServiceWrite(a: Authorizer, svc: LocalService): void {
  requireInstanceWrite(a, { name: svc.Service, Kind: svc.Kind, Proxy: svc.Proxy });
}

/**
 * A registration through the agent API: the new instance, the instance it replaces, and, with
 * `Connect.SidecarService`, the sidecar the agent registers with the same token (its name and
 * its destination, which is the parent unless the block names another) and the sidecar it
 * replaces.
 */
export function requireRegistrationWrite(
  a: Authorizer,
  reg: ServiceRegistration,
  local: LocalState,
): void {
  requireInstanceWrite(a, { name: reg.Name, Kind: reg.Kind, Proxy: reg.Proxy });
  const id = reg.ID || reg.Name;
  const old = local.services.get(id);
  if (old) requireLocalServiceWrite(a, old.service);
  const block = reg.Connect?.SidecarService;
  if (!block) return;
  requireInstanceWrite(a, {
    name: block.Name,
    Kind: 'connect-proxy',
    Proxy: { DestinationServiceName: block.Proxy?.DestinationServiceName || reg.Name },
  });
  const prev = local.services.get(sidecarID(id));
  if (prev) requireLocalServiceWrite(a, prev.service);
}
