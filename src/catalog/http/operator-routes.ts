/**
 * /v1/operator: the servers as Raft and Autopilot would report them. The set comes from
 * ctx.servers() (today the one server; a replicated store will list every member there), so
 * the shapes and the failure tolerance stay right as servers are added. ACL: operator:read.
 */
import type { FastifyInstance } from 'fastify';
import type { AutopilotHealth, AutopilotServerHealth, RaftConfiguration } from '../../api/index.js';
import { checkDatacenter, query, route, sendJSON } from '../../httpkit/consul-http.js';
import { authz, requireGlobal } from './authz.js';
import type { CatalogContext, ServerMember } from './context.js';

/** Voters that may fail while a quorum remains. */
function failureTolerance(servers: readonly ServerMember[]): number {
  const voters = servers.filter((s) => s.voter).length;
  return Math.max(0, Math.floor((voters - 1) / 2));
}

export function operatorRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const guard = (req: Parameters<typeof authz>[1]): void => {
    checkDatacenter(query(req), ctx.datacenter);
    requireGlobal(authz(ctx, req), 'operator', 'read');
  };

  const health = (s: ServerMember): AutopilotServerHealth => ({
    ID: s.id,
    Name: s.node,
    Address: s.address,
    SerfStatus: s.alive ? 'alive' : 'failed',
    Version: ctx.version,
    Leader: s.leader,
    LastContact: '0s',
    LastTerm: 1,
    LastIndex: ctx.state.lastIndex,
    Healthy: s.alive,
    Voter: s.voter,
    StableSince: new Date(s.since).toISOString(),
  });

  route(app, ['GET'], '/v1/operator/raft/configuration', async (req, reply) => {
    guard(req);
    const servers = ctx.servers();
    const out: RaftConfiguration = {
      Servers: servers.map((s) => ({
        ID: s.id,
        Node: s.node,
        Address: s.address,
        Leader: s.leader,
        Voter: s.voter,
        ProtocolVersion: '3',
      })),
      Index: Math.max(1, ...servers.map((s) => s.configIndex)),
    };
    return sendJSON(reply, out);
  });

  route(app, ['GET'], '/v1/operator/autopilot/health', async (req, reply) => {
    guard(req);
    const servers = ctx.servers();
    const list = servers.map(health);
    const out: AutopilotHealth = {
      Healthy: list.every((s) => s.Healthy),
      FailureTolerance: failureTolerance(servers),
      Servers: list,
    };
    // Consul answers 429 while the cluster is unhealthy, so load balancers can probe it.
    if (!out.Healthy) reply.code(429);
    return sendJSON(reply, out);
  });

  route(app, ['GET'], '/v1/operator/autopilot/state', async (req, reply) => {
    guard(req);
    const servers = ctx.servers();
    const leader = servers.find((s) => s.leader);
    const tolerance = failureTolerance(servers);
    return sendJSON(reply, {
      Healthy: servers.every((s) => s.alive),
      FailureTolerance: tolerance,
      OptimisticFailureTolerance: tolerance,
      Servers: Object.fromEntries(
        servers.map((s) => {
          const h = health(s);
          return [
            s.id,
            {
              ID: s.id,
              Name: s.node,
              Address: s.address,
              NodeStatus: h.SerfStatus,
              Version: ctx.version,
              LastContact: '0s',
              LastTerm: 1,
              LastIndex: ctx.state.lastIndex,
              Healthy: h.Healthy,
              StableSince: h.StableSince,
              ReadReplica: false,
              Status: s.leader ? 'leader' : s.voter ? 'voter' : 'non-voter',
              Meta: {},
              NodeType: 'voter',
            },
          ];
        }),
      ),
      Leader: leader?.id ?? '',
      Voters: servers.filter((s) => s.voter).map((s) => s.id),
    });
  });
}
