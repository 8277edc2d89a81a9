/** /v1/catalog/*: register, deregister and the catalog reads. */
import type { FastifyInstance } from 'fastify';
import {
  CHECK_DEFINITION_FIELDS,
  canonicalize,
  isObject,
  metaMap,
  name,
  normalizeServiceRegistration,
  str,
  status,
  textField,
  toAgentService,
  type HealthStatus,
} from '../../api/index.js';
import { badRequest } from '../../core/index.js';
import {
  jsonBody,
  nodeMetaParam,
  params,
  query,
  route,
  sendJSON,
} from '../../httpkit/consul-http.js';
import type { CheckSpec, RegisterCommand } from '../state/commands.js';
import * as Q from '../state/queries.js';
import type { CatalogContext } from './context.js';
import { filters } from '../acl/filters.js';
import { authz, requireNamed } from './authz.js';
import { requireInstanceWrite, type Authorizer, type InstanceAclView } from '../../policy/index.js';
import { read } from './read.js';
import { propose } from './write.js';

const REG_FIELDS = [
  'ID',
  'Node',
  'Address',
  'Datacenter',
  'TaggedAddresses',
  'NodeMeta',
  'Service',
  'Check',
  'Checks',
  'SkipNodeUpdate',
];
const CHECK_FIELDS = [
  'Node',
  'CheckID',
  'ID',
  'Name',
  'Notes',
  'Status',
  'Output',
  'ServiceID',
  'Type',
  'Interval',
  'Timeout',
  'Definition',
];

/** Node tagged addresses are strings; be lenient with clients that send {Address, Port}. */
function nodeTaggedAddresses(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v))
    throw badRequest('TaggedAddresses: must be an object of strings', 'TaggedAddresses');
  const out: Record<string, string> = {};
  for (const [k, a] of Object.entries(v)) {
    const addr = typeof a === 'string' ? a : isObject(a) ? a.Address : undefined;
    if (typeof addr !== 'string')
      throw badRequest(`TaggedAddresses.${k}: must be a string`, `TaggedAddresses.${k}`);
    out[k] = textField({ [k]: addr }, k, 'TaggedAddresses.');
  }
  return out;
}

export function catalogCheckSpec(
  raw: unknown,
  path: string,
  node: string,
  serviceID: string | undefined,
): CheckSpec {
  if (!isObject(raw)) throw badRequest(`${path}: must be an object`, path);
  const o = canonicalize(raw, CHECK_FIELDS, `${path}.`);
  const p = `${path}.`;
  const checkNode = str(o, 'Node', p);
  if (checkNode && checkNode !== node)
    throw badRequest(
      `${p}Node: "${checkNode}" does not match the registration's node "${node}"`,
      `${p}Node`,
    );
  const nm = textField(o, 'Name', p);
  const id = textField(o, 'CheckID', p) || textField(o, 'ID', p) || nm;
  if (!id) throw badRequest(`${p}CheckID: missing (set CheckID or Name)`, `${p}CheckID`);
  let definition = {};
  if (o.Definition !== undefined && o.Definition !== null) {
    if (!isObject(o.Definition))
      throw badRequest(`${p}Definition: must be an object`, `${p}Definition`);
    definition = canonicalize(o.Definition, CHECK_DEFINITION_FIELDS, `${p}Definition.`);
  }
  const def = definition as Record<string, unknown>;
  const type = str(o, 'Type', p) || (def.HTTP ? 'http' : def.TCP ? 'tcp' : def.GRPC ? 'grpc' : '');
  return {
    CheckID: id,
    Name: nm || id,
    Status: (status(o, 'Status', p) ?? 'critical') as HealthStatus,
    Notes: str(o, 'Notes', p),
    Output: str(o, 'Output', p),
    ServiceID: str(o, 'ServiceID', p) || serviceID || '',
    Type: type,
    Interval: str(o, 'Interval', p) || (typeof def.Interval === 'string' ? def.Interval : ''),
    Timeout: str(o, 'Timeout', p) || (typeof def.Timeout === 'string' ? def.Timeout : ''),
    Definition: definition,
  };
}

export function registerCommand(ctx: CatalogContext, raw: unknown): RegisterCommand {
  if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
  const o = canonicalize(raw, REG_FIELDS);
  const node = name(o, 'Node', '', true);
  const address = textField(o, 'Address', '');
  if (!address) throw badRequest('Address: missing (required)', 'Address');
  const dc = str(o, 'Datacenter', '');
  if (dc && dc !== ctx.datacenter)
    throw badRequest(`Datacenter: no path to datacenter "${dc}"`, 'Datacenter');
  const existing = ctx.state.catalog.nodes.get(node);
  const cmd: RegisterCommand = {
    type: 'register',
    node: {
      ID: str(o, 'ID', '') || existing?.ID || '',
      Node: node,
      Address: address,
      Datacenter: ctx.datacenter,
      TaggedAddresses: nodeTaggedAddresses(o.TaggedAddresses),
      Meta: metaMap(o, 'NodeMeta', ''),
    },
    skipNodeUpdate: o.SkipNodeUpdate === true,
    checks: [],
    at: ctx.clock.now(),
  };
  if (o.Service !== undefined && o.Service !== null) {
    cmd.service = toAgentService(normalizeServiceRegistration(o.Service, 'Service'));
  }
  if (o.Check !== undefined && o.Check !== null)
    cmd.checks.push(catalogCheckSpec(o.Check, 'Check', node, undefined));
  if (o.Checks !== undefined && o.Checks !== null) {
    if (!Array.isArray(o.Checks)) throw badRequest('Checks: must be a list', 'Checks');
    o.Checks.forEach((c, i) =>
      cmd.checks.push(catalogCheckSpec(c, `Checks[${i}]`, node, undefined)),
    );
  }
  return cmd;
}

export function catalogRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  route(app, ['PUT'], '/v1/catalog/register', async (req, reply) => {
    const a = authz(ctx, req);
    const cmd = registerCommand(ctx, jsonBody(req));
    authorizeRegister(ctx, a, cmd);
    return sendJSON(reply, await propose(ctx, cmd));
  });

  route(app, ['PUT'], '/v1/catalog/deregister', async (req, reply) => {
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['Node', 'Datacenter', 'ServiceID', 'CheckID']);
    const node = name(o, 'Node', '', true);
    const serviceID = str(o, 'ServiceID', '');
    const checkID = str(o, 'CheckID', '');
    if (serviceID && checkID)
      throw badRequest('ServiceID and CheckID: set at most one', 'ServiceID');
    authorizeDeregister(ctx, authz(ctx, req), node, serviceID, checkID);
    const cmd = {
      type: 'deregister' as const,
      node,
      at: ctx.clock.now(),
      ...(serviceID ? { serviceID } : {}),
      ...(checkID ? { checkID } : {}),
    };
    const out = await propose(ctx, cmd);
    if (!serviceID && !checkID) ctx.liveness.forget(node);
    return sendJSON(reply, out);
  });

  route(app, ['GET'], '/v1/catalog/datacenters', async (_req, reply) =>
    sendJSON(reply, [ctx.datacenter]),
  );

  route(app, ['GET'], '/v1/catalog/nodes', async (req, reply) => {
    const meta = nodeMetaParam(query(req));
    return read(ctx, req, reply, () => Q.catalogNodes(ctx.state, meta), {
      filterable: true,
      acl: filters.nodes,
    });
  });

  route(app, ['GET'], '/v1/catalog/services', async (req, reply) => {
    const meta = nodeMetaParam(query(req));
    return read(ctx, req, reply, () => Q.catalogServices(ctx.state, meta), {
      acl: filters.serviceNames,
    });
  });

  // Trellis' own: the virtual IP of every mesh service (DNS and transparent proxying use them).
  route(app, ['GET'], '/v1/internal/trellis/virtual-ips', async (req, reply) =>
    read(ctx, req, reply, () => Q.virtualIps(ctx.state), { acl: filters.serviceNames }),
  );

  const serviceRead =
    (connect: boolean) =>
    async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
      const q = query(req);
      const svc = (req.params as { name: string }).name;
      const tags = params(q, 'tag');
      const sq: Q.ServiceQuery = {
        connect,
        nodeMeta: nodeMetaParam(q),
        ...(tags.length ? { tags } : {}),
      };
      return read(ctx, req, reply, () => Q.catalogService(ctx.state, svc, sq), {
        filterable: true,
        acl: filters.catalogService,
      });
    };
  route(app, ['GET'], '/v1/catalog/service/:name', serviceRead(false));
  route(app, ['GET'], '/v1/catalog/connect/:name', serviceRead(true));

  route(app, ['GET'], '/v1/catalog/node/:name', async (req, reply) => {
    const node = (req.params as { name: string }).name;
    return read(ctx, req, reply, () => Q.catalogNode(ctx.state, node), {
      acl: (v, a) => filters.nodeServices(v, node, a),
    });
  });

  route(app, ['GET'], '/v1/catalog/node-services/:name', async (req, reply) => {
    const node = (req.params as { name: string }).name;
    return read(
      ctx,
      req,
      reply,
      () => {
        const r = Q.catalogNode(ctx.state, node);
        return {
          ...r,
          value: r.value ? { Node: r.value.Node, Services: Object.values(r.value.Services) } : null,
        };
      },
      {
        filterable: true,
        filterField: 'Services',
        acl: (v, a) => filters.nodeServices(v, node, a),
      },
    );
  });
}

/** A node's identity fields, to tell whether a registration changes the node itself. */
function sameNodeInfo(ctx: CatalogContext, cmd: RegisterCommand): boolean {
  const n = ctx.state.catalog.nodes.get(cmd.node.Node);
  if (!n) return false;
  if (cmd.skipNodeUpdate) return true;
  return (
    n.Address === cmd.node.Address &&
    (!cmd.node.ID || n.ID === cmd.node.ID) &&
    JSON.stringify(n.Meta) === JSON.stringify(cmd.node.Meta) &&
    JSON.stringify(n.TaggedAddresses) === JSON.stringify(cmd.node.TaggedAddresses)
  );
}

/** An instance row as the ACL helpers see it. */
const view = (svc: { Service: string; Kind?: string; Proxy?: InstanceAclView['Proxy'] }) => ({
  name: svc.Service,
  Kind: svc.Kind,
  Proxy: svc.Proxy,
});

/**
 * Consul's rules for a catalog registration: node:write when it creates or changes the node,
 * service:write on the service (and on the instance it replaces), and for each check write on
 * what the check belongs to. A proxy (or anything naming a destination) needs write on the
 * destination as well, for the new registration and for the one it replaces, so a token for
 * "sa" can neither register a proxy for "sb" nor take over or mark healthy one that exists.
 */
export function authorizeRegister(ctx: CatalogContext, a: Authorizer, cmd: RegisterCommand): void {
  if (a.management) return;
  const node = cmd.node.Node;
  if (!sameNodeInfo(ctx, cmd)) requireNamed(a, 'node', node, 'write');
  if (cmd.service) {
    requireInstanceWrite(a, view(cmd.service));
    const old = ctx.state.catalog.getService(node, cmd.service.ID);
    if (old) requireInstanceWrite(a, view(old.svc));
  }
  for (const c of cmd.checks) {
    if (!c.ServiceID) {
      requireNamed(a, 'node', node, 'write');
      continue;
    }
    const svc =
      c.ServiceID === cmd.service?.ID
        ? cmd.service
        : ctx.state.catalog.getService(node, c.ServiceID)?.svc;
    if (svc) requireInstanceWrite(a, view(svc));
    else requireNamed(a, 'node', node, 'write');
  }
}

export function authorizeDeregister(
  ctx: CatalogContext,
  a: Authorizer,
  node: string,
  serviceID: string,
  checkID: string,
): void {
  if (a.management) return;
  if (serviceID) {
    // A node's owner may also remove instances from its own node (an agent cleaning up a
    // service whose registration token it no longer has); Consul asks service:write only.
    const row = ctx.state.catalog.getService(node, serviceID);
    if (row && !a.allowed('node', node, 'write')) return requireInstanceWrite(a, view(row.svc));
  } else if (checkID) {
    const c = ctx.state.catalog.getCheck(node, checkID);
    const owner = c?.ServiceID ? ctx.state.catalog.getService(node, c.ServiceID) : undefined;
    if (owner) return requireInstanceWrite(a, view(owner.svc));
    if (c?.ServiceName) return requireNamed(a, 'service', c.ServiceName, 'write');
  }
  requireNamed(a, 'node', node, 'write');
}
