/**
 * /v1/config: config entries (Consul's api-docs/config.mdx).
 *
 *   PUT    /v1/config[?cas=N]              body = entry            -> true | false
 *   GET    /v1/config/:kind/:name          entry or 404            (blocking)
 *   GET    /v1/config/:kind                [entries] by name       (blocking)
 *   DELETE /v1/config/:kind/:name[?cas=N]  {} (with cas: true | false)
 *
 * Bodies are normalized and checked field by field (normalizeConfigEntry); checks across
 * entries run in the state machine, so a refused write is a 400 that changes nothing.
 *
 * ACL, as Consul: service-defaults, -router, -splitter and -resolver need service:write on the
 * entry's name to write and service:read to read; proxy-defaults needs operator:write to write
 * and nothing to read; service-intentions needs intention write (read) on its destination.
 * Lists drop the entries the token may not read.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../core/index.js';
import { closest } from '../../core/suggest.js';
import {
  CONFIG_ENTRY_KINDS,
  normalizeConfigEntry,
  type ConfigEntryKind,
} from '../../config/config-entries.js';
import {
  checkDatacenter,
  jsonBody,
  query,
  route,
  sendJSON,
  uintParam,
} from '../../httpkit/consul-http.js';
import type { Authorizer } from '../../policy/index.js';
import * as Q from '../state/config-queries.js';
import type { StoredConfigEntry } from '../state/config-table.js';
import { authz, denied } from './authz.js';
import type { CatalogContext } from './context.js';
import { read } from './read.js';
import { propose } from './write.js';

/** The kind named in a path; anything else is a 400 that lists the valid kinds. */
export function kindParam(raw: string): ConfigEntryKind {
  const kind = raw.toLowerCase();
  if ((CONFIG_ENTRY_KINDS as readonly string[]).includes(kind)) return kind as ConfigEntryKind;
  const hint = closest(raw, CONFIG_ENTRY_KINDS);
  throw badRequest(
    `invalid config entry kind ${JSON.stringify(raw.slice(0, 64))}; ${hint ? `did you mean "${hint}"? ` : ''}valid kinds: ${CONFIG_ENTRY_KINDS.join(', ')}`,
    'kind',
  );
}

/** Whether the token may read or write the entry `kind`/`name`. */
export function entryAllowed(
  a: Authorizer,
  kind: ConfigEntryKind,
  name: string,
  access: 'read' | 'write',
): boolean {
  switch (kind) {
    case 'proxy-defaults':
      return access === 'read' || a.global('operator', 'write');
    case 'service-intentions':
      return a.intention(name, access);
    default:
      return a.allowed('service', name, access);
  }
}

function requireEntry(
  a: Authorizer,
  kind: ConfigEntryKind,
  name: string,
  access: 'read' | 'write',
): void {
  if (entryAllowed(a, kind, name, access)) return;
  if (kind === 'proxy-defaults') throw denied(a, 'operator:write');
  if (kind === 'service-intentions') throw denied(a, `intention:${access}`, name);
  throw denied(a, `service:${access}`, name);
}

function readable(list: StoredConfigEntry[], a: Authorizer): StoredConfigEntry[] {
  const out = list.filter((e) => entryAllowed(a, e.Kind, e.Name, 'read'));
  return out.length === list.length ? list : out;
}

export function configRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const params = (req: { params: unknown }): { kind: string; name?: string } =>
    req.params as { kind: string; name?: string };

  route(app, ['PUT'], '/v1/config', async (req, reply) => {
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    const a = authz(ctx, req);
    const cas = uintParam(q, 'cas');
    const body = jsonBody(req);
    if (body === undefined)
      throw badRequest('Request body is empty: send a config entry with Kind and Name', 'body');
    const entry = normalizeConfigEntry(body);
    requireEntry(a, entry.Kind, entry.Name, 'write');
    const accepted = await propose(ctx, {
      type: 'config-set',
      entry,
      ...(cas !== undefined ? { cas } : {}),
      at: ctx.clock.now(),
    });
    return sendJSON(reply, accepted);
  });

  route(app, ['GET', 'DELETE'], '/v1/config/:kind/:name', async (req, reply) => {
    const p = params(req);
    const kind = kindParam(p.kind);
    const name = p.name ?? '';
    const a = authz(ctx, req);
    if (req.method === 'GET') {
      // One entry: refused outright without read, as Consul does.
      requireEntry(a, kind, name, 'read');
      return read(ctx, req, reply, () => Q.configGet(ctx.state, kind, name), {
        emptyStatus: 404,
      });
    }
    const q = query(req);
    checkDatacenter(q, ctx.datacenter);
    requireEntry(a, kind, name, 'write');
    const cas = uintParam(q, 'cas');
    const deleted = await propose(ctx, {
      type: 'config-delete',
      kind,
      name,
      ...(cas !== undefined ? { cas } : {}),
    });
    return sendJSON(reply, cas === undefined ? {} : deleted);
  });

  route(app, ['GET'], '/v1/config/:kind', async (req, reply) => {
    const kind = kindParam(params(req).kind);
    return read(ctx, req, reply, () => Q.configList(ctx.state, kind), {
      filterable: true,
      acl: readable,
    });
  });
}
