/** `trellis server`: argv -> catalog server. */
import type { FastifyInstance } from 'fastify';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { newId, systemClock, systemRandom } from '../core/index.js';
import { startServer, type CatalogServer } from '../catalog/server.js';
import type { Logger } from '../telemetry/logger.js';
import { nodeIdFor } from './node-id.js';

export interface ServerArgs {
  dataDir: string;
  datacenter: string;
  node?: string;
  bind: string;
  advertise?: string;
  snapshotEvery?: number;
  sessionMinTtlMs?: number;
  nodeGraceMs?: number;
}

export function splitHostPort(addr: string, defPort: number): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  return { host: addr, port: defPort };
}

export async function runServer(
  args: ServerArgs,
  log: Logger,
  extraRoutes?: (app: FastifyInstance) => void,
): Promise<CatalogServer> {
  mkdirSync(args.dataDir, { recursive: true, mode: 0o700 });
  const { host, port } = splitHostPort(args.bind, 8500);
  const nodeName = args.node ?? hostname();
  const advertise = args.advertise ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  const server = await startServer({
    dataDir: args.dataDir,
    datacenter: args.datacenter,
    nodeName,
    nodeId: nodeIdFor(args.dataDir),
    host,
    port,
    advertiseAddr: advertise,
    clock: systemClock,
    random: systemRandom,
    newId,
    log: log.child({ component: 'catalog' }),
    ...(extraRoutes ? { extraRoutes } : {}),
    ...(args.snapshotEvery ? { snapshotEvery: args.snapshotEvery } : {}),
    ...(args.sessionMinTtlMs !== undefined ? { sessionMinTTLms: args.sessionMinTtlMs } : {}),
    ...(args.nodeGraceMs !== undefined ? { nodeGraceMs: args.nodeGraceMs } : {}),
  });
  log.info(
    { address: server.address, node: nodeName, datacenter: args.datacenter, dataDir: args.dataDir },
    'trellis server ready',
  );
  return server;
}
