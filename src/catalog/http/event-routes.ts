/**
 * /v1/event: user events. Firing logs the event (see state/event-table.ts); listing answers the
 * events meant for the node the request came through (its node filter matches the node's name,
 * its service and tag filters one of the node's services), newest last, as a Consul agent
 * lists the events it received. ACL: event:write on the name to fire; the list holds only
 * events the token may read (event:read).
 */
import type { FastifyInstance } from 'fastify';
import type { UserEvent } from '../../api/index.js';
import { badRequest, compileRegex } from '../../core/index.js';
import { param, query, route, sendJSON } from '../../httpkit/consul-http.js';
import { K } from '../state/index-table.js';
import type { StateStore } from '../state/state-store.js';
import { agentNode } from './agent-node.js';
import { authz, requireNamed } from './authz.js';
import type { CatalogContext } from './context.js';
import { read } from './read.js';
import { propose } from './write.js';

/** Consul's limit on a user event (serf's UserEventSizeLimit): name and payload together. */
export const EVENT_SIZE_LIMIT = 512;
const EVENT_NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

function filterRegex(value: string, field: string): (s: string) => boolean {
  const r = compileRegex(value);
  if (!r.ok) throw badRequest(`${field}: ${r.reason}`, field);
  return r.test;
}

export function eventRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  route(app, ['PUT'], '/v1/event/fire/:name', async (req, reply) => {
    const q = query(req);
    const name = (req.params as { name: string }).name;
    if (!EVENT_NAME_RE.test(name))
      throw badRequest(
        'name: an event name is 1 to 128 letters, digits, ".", "_", ":" or "-"',
        'name',
      );
    requireNamed(authz(ctx, req), 'event', name, 'write');
    const node = param(q, 'node') ?? '';
    const service = param(q, 'service') ?? '';
    const tag = param(q, 'tag') ?? '';
    if (node) filterRegex(node, 'node');
    if (service) filterRegex(service, 'service');
    if (tag) filterRegex(tag, 'tag');
    if (tag && !service) throw badRequest('tag: a tag filter needs a service filter', 'tag');
    const payload = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (payload.length + name.length > EVENT_SIZE_LIMIT)
      throw badRequest(
        `Payload: user event exceeds limit of ${EVENT_SIZE_LIMIT} bytes (name and payload)`,
        'body',
      );
    const event = await propose(ctx, {
      type: 'event-fire',
      event: {
        ID: ctx.newId(),
        Name: name,
        Payload: payload.length > 0 ? payload.toString('base64') : null,
        NodeFilter: node,
        ServiceFilter: service,
        TagFilter: tag,
      },
    });
    return sendJSON(reply, event);
  });

  route(app, ['GET'], '/v1/event/list', async (req, reply) => {
    const q = query(req);
    const name = param(q, 'name') ?? '';
    const node = agentNode(ctx, req);
    return read(
      ctx,
      req,
      reply,
      () => {
        const events = ctx.state.events.events.filter(
          (e) => (name === '' || e.Name === name) && meantFor(ctx.state, e, node),
        );
        return {
          index: Math.max(1, ctx.state.indexes.get(K.events)),
          value: events,
          watch: { keys: [K.events] },
        };
      },
      {
        filterable: true,
        varyBy: node,
        acl: (list: UserEvent[], a) => {
          const kept = list.filter((e) => a.allowed('event', e.Name, 'read'));
          return kept.length === list.length ? list : kept;
        },
      },
    );
  });
}

/** Whether a Consul agent on `node` would have processed the event. */
function meantFor(st: StateStore, e: UserEvent, node: string): boolean {
  if (e.NodeFilter && !testRegex(e.NodeFilter, node)) return false;
  if (!e.ServiceFilter) return true;
  for (const row of st.catalog.servicesByNode.get(node)?.values() ?? []) {
    if (!testRegex(e.ServiceFilter, row.svc.Service)) continue;
    if (!e.TagFilter || row.svc.Tags.some((t) => testRegex(e.TagFilter, t))) return true;
  }
  return false;
}

/** Filters were checked when the event was fired; compiled ones are kept (few distinct). */
const compiled = new Map<string, (s: string) => boolean>();
function testRegex(pattern: string, subject: string): boolean {
  let t = compiled.get(pattern);
  if (!t) {
    const r = compileRegex(pattern);
    t = r.ok ? r.test : () => false;
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, t);
  }
  return t(subject);
}
