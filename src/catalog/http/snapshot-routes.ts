/**
 * /v1/snapshot: save and restore the whole catalog state, as Consul's endpoint does (a
 * management token for both). The file is Trellis's own (api/snapshot-file.ts), not Consul's
 * Raft archive. A refused restore answers 400 with JSON {"error", "field"} and changes nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  isSnapshotProblem,
  type SnapshotProblem,
} from '../../api/index.js';
import { isMeshError } from '../../core/index.js';
import { checkDatacenter, query, setQueryMeta } from '../../httpkit/consul-http.js';
import { serializeCapture } from '../state/state-store.js';
import { authz, denied } from './authz.js';
import type { CatalogContext } from './context.js';

/** The largest snapshot file PUT accepts (the API's usual limit is 1 MiB). */
export const MAX_SNAPSHOT_FILE_BYTES = 512 * 1024 * 1024;

export function snapshotRoutes(app: FastifyInstance, ctx: CatalogContext): void {
  const guard = (req: FastifyRequest): void => {
    checkDatacenter(query(req), ctx.datacenter);
    const a = authz(ctx, req);
    if (!a.management) throw denied(a, 'management');
  };

  app.route({
    method: 'GET',
    url: '/v1/snapshot',
    handler: async (req, reply) => {
      guard(req);
      // The capture is taken synchronously, so it is the state at exactly one index.
      const capture = ctx.state.capture();
      const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));
      const state = await serializeCapture(capture, yieldNow);
      const file = encodeSnapshotFile(state, {
        index: capture.lastIndex,
        datacenter: ctx.datacenter,
      });
      setQueryMeta(reply, capture.lastIndex);
      reply.header('content-type', 'application/x-gzip');
      return reply.send(file);
    },
  });

  app.route({
    method: 'PUT',
    url: '/v1/snapshot',
    bodyLimit: MAX_SNAPSHOT_FILE_BYTES,
    handler: async (req, reply) => {
      guard(req);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const decoded = decodeSnapshotFile(body, ctx.datacenter);
      if (isSnapshotProblem(decoded)) return refuse(reply, decoded);
      let index: number;
      try {
        index = await ctx.writer.restore(decoded.state);
      } catch (err) {
        if (isMeshError(err) && err.status === 400)
          return refuse(reply, { field: err.field ?? 'state', error: err.message });
        throw err;
      }
      ctx.log.info(
        { index, snapshotIndex: decoded.header.index, bytes: decoded.header.bytes },
        'catalog restored from a snapshot',
      );
      setQueryMeta(reply, index);
      reply.header('content-type', 'application/json');
      return reply.send(Buffer.from(JSON.stringify({ Index: index })));
    },
  });
}

function refuse(reply: FastifyReply, p: SnapshotProblem): FastifyReply {
  reply.code(400).header('content-type', 'application/json');
  return reply.send(Buffer.from(JSON.stringify({ error: p.error, field: p.field })));
}
