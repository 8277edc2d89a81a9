/**
 * /v1/coordinate: network coordinates in Consul's shapes. Trellis runs no Serf/Vivaldi and
 * computes none: it serves the coordinates clients store with PUT /v1/coordinate/update, and
 * the origin coordinate (what a fresh Consul agent starts from) for every node without one, so
 * every node sorts at the same distance until real coordinates arrive.
 */
import type { FastifyInstance } from 'fastify';
import {
  canonicalize,
  isObject,
  originCoordinate,
  type Coordinate,
  type CoordinateEntry,
  type DatacenterCoordinates,
} from '../../api/index.js';
import { badRequest } from '../../core/index.js';
import { checkDatacenter, jsonBody, query, route, sendJSON } from '../../httpkit/consul-http.js';
import { K } from '../state/index-table.js';
import { authz, requireNamed } from './authz.js';
import type { CatalogContext } from './context.js';
import { read } from './read.js';
import { propose } from './write.js';

/** Consul's Vivaldi dimensionality. */
const DIMENSIONS = 8;

function finite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw badRequest(`${field}: must be a finite number`, field);
  return v;
}

function coordinateFrom(raw: unknown): Coordinate {
  if (!isObject(raw)) throw badRequest('Coord: missing (required)', 'Coord');
  const c = canonicalize(raw, ['Vec', 'Error', 'Adjustment', 'Height'], 'Coord.');
  if (!Array.isArray(c.Vec) || c.Vec.length !== DIMENSIONS)
    throw badRequest(`Coord.Vec: must be a list of ${DIMENSIONS} numbers`, 'Coord.Vec');
  const height = finite(c.Height ?? 0, 'Coord.Height');
  if (height < 0) throw badRequest('Coord.Height: must not be negative', 'Coord.Height');
  return {
    Vec: c.Vec.map((x, i) => finite(x, `Coord.Vec[${i}]`)),
    Error: finite(c.Error ?? 0, 'Coord.Error'),
    Adjustment: finite(c.Adjustment ?? 0, 'Coord.Adjustment'),
    Height: height,
  };
}

export function coordinateRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const entryOf = (node: string): CoordinateEntry =>
    ctx.state.coordinates.get(node) ?? { Node: node, Segment: '', Coord: originCoordinate() };

  route(app, ['GET'], '/v1/coordinate/datacenters', async (_req, reply) => {
    // The WAN pool: this datacenter's servers, named <node>.<dc> as Consul names them.
    const dcs: DatacenterCoordinates[] = [
      {
        Datacenter: ctx.datacenter,
        AreaID: 'wan',
        Coordinates: ctx.servers().map((s) => ({
          Node: `${s.node}.${ctx.datacenter}`,
          Segment: '',
          Coord: originCoordinate(),
        })),
      },
    ];
    return sendJSON(reply, dcs);
  });

  route(app, ['GET'], '/v1/coordinate/nodes', async (req, reply) =>
    read(
      ctx,
      req,
      reply,
      () => {
        const keys = [K.coordinates, K.nodes];
        const nodes = [...ctx.state.catalog.nodes.keys()].sort();
        return {
          index: Math.max(1, ctx.state.indexes.max(keys)),
          value: nodes.map(entryOf),
          watch: { keys },
        };
      },
      {
        filterable: true,
        acl: (list: CoordinateEntry[], a) => {
          const kept = list.filter((e) => a.allowed('node', e.Node, 'read'));
          return kept.length === list.length ? list : kept;
        },
      },
    ),
  );

  route(app, ['GET'], '/v1/coordinate/node/:node', async (req, reply) => {
    const node = (req.params as { node: string }).node;
    return read(
      ctx,
      req,
      reply,
      () => {
        const keys = [K.coordinates, K.node(node)];
        const known = ctx.state.catalog.nodes.has(node);
        return {
          index: Math.max(1, ctx.state.indexes.max(keys)),
          value: known ? [entryOf(node)] : [],
          watch: { keys },
        };
      },
      {
        emptyStatus: 404,
        acl: (list: CoordinateEntry[], a) =>
          list.length > 0 && !a.allowed('node', node, 'read') ? [] : list,
      },
    );
  });

  route(app, ['PUT'], '/v1/coordinate/update', async (req, reply) => {
    checkDatacenter(query(req), ctx.datacenter);
    const raw = jsonBody(req);
    if (!isObject(raw)) throw badRequest('Request body must be a JSON object', 'body');
    const o = canonicalize(raw, ['Node', 'Segment', 'Coord']);
    if (typeof o.Node !== 'string' || o.Node === '')
      throw badRequest('Node: missing (required)', 'Node');
    if (o.Segment !== undefined && o.Segment !== null && o.Segment !== '')
      throw badRequest('Segment: network segments are not supported by Trellis', 'Segment');
    requireNamed(authz(ctx, req), 'node', o.Node, 'write');
    const entry: CoordinateEntry = { Node: o.Node, Segment: '', Coord: coordinateFrom(o.Coord) };
    await propose(ctx, { type: 'coordinate-set', entries: [entry] });
    return reply.send();
  });
}
