/** `trellis agent`: argv -> a per-host agent with its local HTTP API. */
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { TokenResolver } from '../agent/acl/token-resolver.js';
import { TrellisAgent } from '../agent/agent.js';
import { agentRoutes } from '../agent/http/agent-routes.js';
import { connectRoutes } from '../agent/http/connect-routes.js';
import { createForwarder, forwardRoutes, type Forwarder } from '../agent/http/forward.js';
import { systemClock, systemRandom } from '../core/index.js';
import { installConsulHttp, CONSUL_FASTIFY_OPTIONS } from '../httpkit/consul-http.js';
import type { Logger } from '../telemetry/logger.js';
import { nodeIdFor } from './node-id.js';
import { splitHostPort } from './addresses.js';

export interface AgentArgs {
  servers: string[];
  node?: string;
  /** The node's UUID; read from (or made in) the data dir when absent. */
  nodeId?: string;
  datacenter: string;
  dataDir: string;
  httpAddr: string;
  configDir?: string;
  advertise?: string;
  enableScriptChecks?: boolean;
  syncIntervalMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  nodeMeta?: Record<string, string>;
  token?: string;
}

export interface RunningAgent {
  agent: TrellisAgent;
  app: FastifyInstance;
  address: string;
  close(opts?: { leave?: boolean }): Promise<void>;
}

export function makeAgent(
  args: AgentArgs,
  log: Logger,
  server: boolean,
  tokenResolver?: TokenResolver,
): TrellisAgent {
  const nodeName = args.node ?? hostname();
  mkdirSync(args.dataDir, { recursive: true, mode: 0o700 });
  return new TrellisAgent({
    node: {
      node: nodeName,
      nodeId: args.nodeId ?? nodeIdFor(args.dataDir),
      address: args.advertise ?? '127.0.0.1',
      datacenter: args.datacenter,
      meta: server
        ? { 'consul-network-segment': '', 'trellis-role': 'server', ...args.nodeMeta }
        : (args.nodeMeta ?? {}),
    },
    servers: args.servers,
    dataDir: args.dataDir,
    ...(args.configDir ? { configDir: args.configDir } : {}),
    clock: systemClock,
    random: systemRandom,
    log: log.child({ component: 'agent' }),
    enableScriptChecks: args.enableScriptChecks ?? false,
    ...(args.syncIntervalMs ? { syncIntervalMs: args.syncIntervalMs } : {}),
    ...(args.heartbeatIntervalMs ? { heartbeatIntervalMs: args.heartbeatIntervalMs } : {}),
    ...(args.heartbeatTtlMs ? { heartbeatTtlMs: args.heartbeatTtlMs } : {}),
    ...(args.token ? { token: args.token } : {}),
    ...(tokenResolver ? { tokenResolver } : {}),
    server,
  });
}

export async function runAgent(args: AgentArgs, log: Logger): Promise<RunningAgent> {
  const agent = makeAgent(args, log, false);
  await agent.start();
  const { host, port } = splitHostPort(args.httpAddr, 8500);
  const app = Fastify(CONSUL_FASTIFY_OPTIONS);
  installConsulHttp(app, log.child({ component: 'agent-http' }));
  agentRoutes(app, agent);
  connectRoutes(app, agent);
  const fwd: Forwarder = createForwarder(args.servers);
  forwardRoutes(app, fwd, agent.opts.node.node);
  await app.listen({ host, port });
  const addr = app.server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const address = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  log.info({ address, node: agent.opts.node.node, servers: args.servers }, 'trellis agent ready');
  return {
    agent,
    app,
    address,
    async close(opts = {}) {
      await app.close();
      await agent.stop(opts);
      await fwd.close();
    },
  };
}
