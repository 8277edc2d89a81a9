/**
 * What the agent says about itself and its host, in Consul's shapes:
 *   GET /v1/agent/version  build information (no ACL, as in Consul)
 *   GET /v1/agent/host     memory, CPUs, OS and root disk of the host (operator:read)
 */
import type { FastifyInstance } from 'fastify';
import { requestToken, route, sendJSON } from '../../httpkit/consul-http.js';
import { permissionDenied } from '../../policy/index.js';
import type { TrellisAgent } from '../agent.js';
import { collectHostInfo } from '../host/host-info.js';
import { BUILD_DATE, VERSION } from './version.js';

export function infoRoutes(app: FastifyInstance, agent: TrellisAgent): void {
  route(app, ['GET'], '/v1/agent/version', async (_req, reply) =>
    sendJSON(reply, {
      // Consul's fields (its /v1/agent/version), then those of `consul version -format=json`.
      SHA: '',
      BuildDate: BUILD_DATE,
      HumanVersion: `${VERSION} (trellis)`,
      FIPS: '',
      Version: VERSION,
      Revision: 'trellis',
      Prerelease: '',
    }),
  );

  route(app, ['GET'], '/v1/agent/host', async (req, reply) => {
    const a = await agent.resolveToken(requestToken(req));
    if (!a.global('operator', 'read')) throw permissionDenied(a, 'operator:read');
    return sendJSON(reply, await collectHostInfo(agent.opts.clock.now()));
  });
}
