/** /v1/agent/*: this host's services, checks, maintenance, members and self. */
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { compileFilter } from '../../api/filter.js';
import {
  canonicalize,
  isObject,
  normalizeCheckType,
  normalizeServiceRegistration,
  SERF_CHECK_ID,
  status as statusField,
  type AgentService,
  type CheckRegistration,
  type HealthCheck,
  type HealthStatus,
  type Member,
} from '../../api/index.js';
import { badRequest, notFound } from '../../core/index.js';
import {
  blockingParams,
  boolParam,
  jsonBody,
  param,
  query,
  route,
  sendJSON,
} from '../../httpkit/consul-http.js';
import { ConfigLoadError, type TrellisAgent } from '../agent.js';
import { requireAllowed, type Authorizer } from '../../policy/index.js';
import { requestToken } from '../../httpkit/consul-http.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LocalCheck } from '../local/local-state.js';
import { authorizeRoute } from './authorize-route.js';
import { redirectRoutes } from './redirect-routes.js';
import { BUILD_DATE, VERSION } from './version.js';
import { infoRoutes } from './info-routes.js';
import { membershipRoutes } from './membership-routes.js';
import { drainRoute } from './drain-route.js';
import { requireLocalServiceWrite, requireRegistrationWrite } from './service-authz.js';

function agentService(agent: TrellisAgent, id: string): AgentService | undefined {
  const e = agent.local.services.get(id);
  if (!e) return undefined;
  return { ...e.service, Datacenter: agent.opts.node.datacenter };
}

function agentCheck(agent: TrellisAgent, c: LocalCheck): HealthCheck {
  const svc = c.ServiceID ? agent.local.services.get(c.ServiceID)?.service : undefined;
  return {
    Node: agent.opts.node.node,
    CheckID: c.CheckID,
    Name: c.Name,
    Status: c.Status,
    Notes: c.Notes,
    Output: c.Output,
    ServiceID: c.ServiceID,
    ServiceName: svc?.Service ?? '',
    ServiceTags: svc?.Tags ?? [],
    Type: c.Type,
    Interval: c.Interval,
    Timeout: c.Timeout,
    ExposedPort: 0,
    Definition: c.Definition,
    CreateIndex: 0,
    ModifyIndex: 0,
  };
}

function filtered<T>(items: Record<string, T>, expr: string | undefined): Record<string, T> {
  if (!expr) return items;
  const pred = compileFilter(expr);
  return Object.fromEntries(Object.entries(items).filter(([, v]) => pred(v)));
}

/** Aggregated status as Consul computes it: critical > warning > passing. */
function aggregate(checks: LocalCheck[]): HealthStatus {
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

const HEALTH_CODE: Record<HealthStatus, number> = { passing: 200, warning: 429, critical: 503 };

export function agentRoutes(app: FastifyInstance, agent: TrellisAgent): void {
  const node = agent.opts.node;
  const authz = (req: FastifyRequest): Promise<Authorizer> => agent.resolveToken(requestToken(req));
  const need = (
    a: Authorizer,
    resource: 'service' | 'node' | 'agent',
    name: string,
    access: 'read' | 'write',
  ): void => {
    requireAllowed(a, resource, name, access);
  };
  /** Write on what a check belongs to: its service, else the node. */
  const needCheckWrite = (a: Authorizer, checkId: string): void => {
    const c = agent.local.checks.get(checkId)?.check;
    const svc = c?.ServiceID ? agent.local.services.get(c.ServiceID)?.service : undefined;
    if (svc) requireLocalServiceWrite(a, svc);
    else need(a, 'node', node.node, 'write');
  };
  /**
   * A write's answer, sent once the change reached the servers (as Consul's agent syncs before
   * it replies), so a catalog or health read right after it sees the change. When no server
   * answers the write still succeeds: it is in local state and anti-entropy syncs it later.
   */
  const answerSynced = async (reply: FastifyReply): Promise<FastifyReply> => {
    await agent.sync.flush();
    return reply.code(200).send();
  };
  const visibleCheck = (a: Authorizer, h: HealthCheck): boolean =>
    h.ServiceName ? a.allowed('service', h.ServiceName, 'read') : a.allowed('node', h.Node, 'read');

  route(app, ['GET'], '/v1/agent/self', async (req, reply) => {
    need(await authz(req), 'agent', node.node, 'read');
    return sendJSON(reply, {
      Config: {
        Datacenter: node.datacenter,
        PrimaryDatacenter: node.datacenter,
        NodeName: node.node,
        NodeID: node.nodeId,
        Revision: 'trellis',
        Server: agent.opts.server === true,
        Version: VERSION,
        BuildDate: BUILD_DATE,
      },
      DebugConfig: {},
      Coord: null,
      Member: selfMember(agent),
      Stats: {
        agent: {
          checks: String(agent.local.checks.size),
          services: String(agent.local.services.size),
        },
        trellis: {
          sync_error: agent.sync.lastError ?? '',
          synced: String(agent.sync.syncedVersion === agent.local.version),
        },
      },
      Meta: node.meta,
    });
  });

  route(app, ['GET'], '/v1/agent/members', async (req, reply) => {
    const a = await authz(req);
    const [nodes, checks] = await Promise.all([
      agent.client.catalog.nodes(),
      agent.client.health.state('any'),
    ]);
    const serf = new Map(
      checks.value.filter((c) => c.CheckID === SERF_CHECK_ID).map((c) => [c.Node, c.Status]),
    );
    const members: Member[] = nodes.value
      .filter((n) => serf.has(n.Node) && a.allowed('node', n.Node, 'read'))
      .map((n) =>
        member(
          n.Node,
          n.Address,
          node.datacenter,
          n.Meta['trellis-role'] === 'server',
          serf.get(n.Node) === 'passing' ? 1 : 4,
        ),
      );
    return sendJSON(reply, members);
  });

  route(app, ['GET'], '/v1/agent/services', async (req, reply) => {
    const a = await authz(req);
    const out: Record<string, AgentService> = {};
    for (const [id, e] of agent.local.services)
      if (a.allowed('service', e.service.Service, 'read')) out[id] = agentService(agent, id)!;
    return sendJSON(reply, filtered(out, param(query(req), 'filter')));
  });

  // Hash-blocking, as Consul's agent does it: ?hash=<X-Consul-ContentHash>&wait=30s waits for
  // the instance to change (or to disappear) before answering.
  route(app, ['GET'], '/v1/agent/service/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const a = await authz(req);
    const found = agent.local.services.get(id);
    if (found) need(a, 'service', found.service.Service, 'read');
    const q = query(req);
    const hash = param(q, 'hash');
    const { waitMs } = blockingParams(q);
    const deadline = agent.opts.clock.now() + waitMs;
    const ac = new AbortController();
    const onClose = (): void => ac.abort();
    reply.raw.once('close', onClose);
    try {
      for (;;) {
        const svc = agentService(agent, id);
        if (!svc) throw notFound(`unknown service ID: ${id}`);
        const current = contentHash(svc);
        const remaining = deadline - agent.opts.clock.now();
        if (!hash || hash !== current || remaining <= 0 || ac.signal.aborted) {
          reply.header('X-Consul-ContentHash', current);
          return sendJSON(reply, { ...svc, ContentHash: current });
        }
        await agent.waitForChange(remaining, ac.signal);
      }
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  route(app, ['PUT'], '/v1/agent/service/register', async (req, reply) => {
    const a = await authz(req);
    const reg = normalizeServiceRegistration(jsonBody(req));
    // The instance, what it replaces, its sidecar, and any proxy's destination.
    requireRegistrationWrite(a, reg, agent.local);
    const replace = boolParam(query(req), 'replace-existing-checks');
    // The catalog copy is written with the registering token (Consul's per-service token).
    const token = requestToken(req);
    agent.local.addService(reg, 'api', replace, token || undefined);
    return answerSynced(reply);
  });

  route(app, ['PUT'], '/v1/agent/service/deregister/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const existing = agent.local.services.get(id);
    if (existing) requireLocalServiceWrite(await authz(req), existing.service);
    agent.local.removeService(id);
    return answerSynced(reply);
  });

  route(app, ['PUT'], '/v1/agent/service/maintenance/:id', async (req, reply) => {
    const q = query(req);
    if (param(q, 'enable') === undefined) throw badRequest('Missing value for enable', 'enable');
    const target = agent.local.services.get((req.params as { id: string }).id);
    if (target) requireLocalServiceWrite(await authz(req), target.service);
    agent.local.setServiceMaintenance(
      (req.params as { id: string }).id,
      boolParam(q, 'enable'),
      param(q, 'reason') ?? '',
    );
    return answerSynced(reply);
  });

  route(app, ['PUT'], '/v1/agent/maintenance', async (req, reply) => {
    const q = query(req);
    if (param(q, 'enable') === undefined) throw badRequest('Missing value for enable', 'enable');
    need(await authz(req), 'node', node.node, 'write');
    agent.local.setNodeMaintenance(boolParam(q, 'enable'), param(q, 'reason') ?? '');
    return answerSynced(reply);
  });

  route(app, ['GET'], '/v1/agent/checks', async (req, reply) => {
    const a = await authz(req);
    const out: Record<string, HealthCheck> = {};
    for (const [id, e] of agent.local.checks) {
      const h = agentCheck(agent, e.check);
      if (visibleCheck(a, h)) out[id] = h;
    }
    return sendJSON(reply, filtered(out, param(query(req), 'filter')));
  });

  route(app, ['PUT'], '/v1/agent/check/register', async (req, reply) => {
    const c = normalizeCheckType(jsonBody(req), 'check');
    if (!c.Name) throw badRequest('Missing check name', 'Name');
    const reg: CheckRegistration & { ServiceID?: string } = { ...c, Name: c.Name };
    const a = await authz(req);
    const owner = reg.ServiceID ? agent.local.services.get(reg.ServiceID) : undefined;
    if (owner) requireLocalServiceWrite(a, owner.service);
    else need(a, 'node', node.node, 'write');
    agent.local.addCheck(reg, 'api');
    return answerSynced(reply);
  });

  route(app, ['PUT'], '/v1/agent/check/deregister/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    needCheckWrite(await authz(req), id);
    agent.local.removeCheck(id);
    return answerSynced(reply);
  });

  const ttl = (status: HealthStatus) => async (req: FastifyRequest, reply: FastifyReply) => {
    const id = (req.params as { id: string }).id;
    if (!agent.checks.has(id))
      throw notFound(
        `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`,
      );
    needCheckWrite(await authz(req), id);
    agent.checks.ttlUpdate(id, status, param(query(req), 'note') ?? '');
    return answerSynced(reply);
  };
  route(app, ['PUT'], '/v1/agent/check/pass/:id', ttl('passing'));
  route(app, ['PUT'], '/v1/agent/check/warn/:id', ttl('warning'));
  route(app, ['PUT'], '/v1/agent/check/fail/:id', ttl('critical'));

  route(app, ['PUT'], '/v1/agent/check/update/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be {Status, Output}', 'body');
    const o = canonicalize(raw, ['Status', 'Output']);
    const st = statusField(o, 'Status', '');
    if (!st) throw badRequest('Status: must be passing, warning or critical', 'Status');
    if (!agent.checks.has(id)) throw notFound(`Unknown check ID "${id}"`);
    needCheckWrite(await authz(req), id);
    agent.checks.ttlUpdate(id, st, typeof o.Output === 'string' ? o.Output : '');
    return answerSynced(reply);
  });

  route(app, ['GET'], '/v1/agent/health/service/id/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const svc = agentService(agent, id);
    if (svc) need(await authz(req), 'service', svc.Service, 'read');
    if (!svc)
      return reply.code(404).type('text/plain; charset=utf-8').send(`ServiceId ${id} not found`);
    const st = aggregate(agent.local.checksOf(id));
    reply.code(HEALTH_CODE[st]);
    return sendJSON(reply, {
      AggregatedStatus: st,
      Service: svc,
      Checks: agent.local.checksOf(id).map((c) => agentCheck(agent, c)),
    });
  });

  route(app, ['GET'], '/v1/agent/health/service/name/:name', async (req, reply) => {
    const name = (req.params as { name: string }).name;
    need(await authz(req), 'service', name, 'read');
    const list = [...agent.local.services.values()].filter((e) => e.service.Service === name);
    if (list.length === 0)
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .send(`ServiceName ${name} Not Found`);
    const entries = list.map((e) => {
      const checks = agent.local.checksOf(e.service.ID);
      return {
        AggregatedStatus: aggregate(checks),
        Service: agentService(agent, e.service.ID),
        Checks: checks.map((c) => agentCheck(agent, c)),
      };
    });
    const worst = aggregate(list.flatMap((e) => agent.local.checksOf(e.service.ID)));
    reply.code(HEALTH_CODE[worst]);
    return sendJSON(reply, entries);
  });

  route(app, ['PUT'], '/v1/agent/reload', async (req, reply) => {
    need(await authz(req), 'agent', node.node, 'write');
    try {
      await agent.reload();
    } catch (err) {
      // The files are the caller's input: their errors are a 400 (nothing was changed).
      if (err instanceof ConfigLoadError)
        throw badRequest(`reload refused; the running configuration stays: ${err.message}`);
      throw err;
    }
    return reply.code(200).send();
  });

  authorizeRoute(app, agent, authz);
  infoRoutes(app, agent);
  membershipRoutes(app, agent);
  drainRoute(app, agent);
  redirectRoutes(app, agent, authz);
}

/** A short stable hash of an instance, for hash-blocking reads. */
function contentHash(svc: AgentService): string {
  return createHash('sha256').update(JSON.stringify(svc)).digest('hex').slice(0, 16);
}

function member(name: string, addr: string, dc: string, server: boolean, status: number): Member {
  return {
    Name: name,
    Addr: addr,
    Port: 8301,
    Tags: {
      role: server ? 'consul' : 'node',
      dc,
      build: VERSION,
      vsn: '2',
      vsn_min: '2',
      vsn_max: '3',
      port: '8300',
    },
    Status: status,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  };
}

function selfMember(agent: TrellisAgent): Member {
  const n = agent.opts.node;
  return member(n.node, n.address, n.datacenter, agent.opts.server === true, 1);
}
