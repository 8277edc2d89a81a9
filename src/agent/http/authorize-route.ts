/**
 * POST /v1/agent/connect/authorize (Consul's api-docs/agent/connect.mdx): may the workload in a
 * client certificate connect to Target? Answered from the agent's intention cache, with no
 * server round trip; the caller has already verified the certificate chain.
 *
 *   body {Target, ClientCertURI, ClientCertSerial?, Namespace?, Partition?}
 *     -> {Authorized, Reason}; ACL service:write on Target.
 *
 * Before the cache has loaded once the route waits briefly, then answers 503: no decision is
 * better than a guessed one.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canonicalize, isObject, NAME_RE } from '../../api/index.js';
import { badRequest, MeshError } from '../../core/index.js';
import { jsonBody, route, sendJSON } from '../../httpkit/consul-http.js';
import { requireAllowed, type Authorizer } from '../../policy/index.js';
import type { TrellisAgent } from '../agent.js';

const FIELDS = ['Target', 'ClientCertURI', 'ClientCertSerial', 'Namespace', 'Partition'];
const READY_WAIT_MS = 5_000;

export function authorizeRoute(
  app: FastifyInstance,
  agent: TrellisAgent,
  authz: (req: FastifyRequest) => Promise<Authorizer>,
): void {
  route(app, ['POST'], '/v1/agent/connect/authorize', async (req, reply) => {
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be {Target, ClientCertURI}', 'body');
    const o = canonicalize(raw, FIELDS);
    const target = o.Target;
    if (typeof target !== 'string' || target === '')
      throw badRequest('Target service must be specified', 'Target');
    if (!NAME_RE.test(target))
      throw badRequest(
        `Target: ${JSON.stringify(target.slice(0, 64))} is not a valid service name`,
        'Target',
      );
    const uri = o.ClientCertURI;
    if (typeof uri !== 'string' || uri === '')
      throw badRequest('ClientCertURI must be specified', 'ClientCertURI');
    for (const k of ['Namespace', 'Partition']) {
      const v = o[k];
      if (v !== undefined && v !== null && v !== '' && v !== 'default')
        throw badRequest(`${k}: only "default" exists`, k);
    }
    const a = await authz(req);
    requireAllowed(a, 'service', target, 'write');
    const cache = agent.intentions;
    if (!cache.ready && cache.index === 0 && !(await cache.whenReady(READY_WAIT_MS)))
      throw new MeshError(
        'MESH_ERR_UNAVAILABLE',
        'peer',
        'intentions are not loaded from the servers yet; try again',
        { status: 503 },
      );
    return sendJSON(reply, cache.authorize(target, uri));
  });
}
