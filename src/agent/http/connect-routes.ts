/**
 * The agent's Connect CA endpoints, answered from its own cache (leaf-manager.ts):
 *   GET /v1/agent/connect/ca/roots          the roots, blocking on their index
 *   GET /v1/agent/connect/ca/leaf/:service  the service's certificate and key (service:write),
 *                                           blocking until it is renewed or re-issued
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MeshError } from '../../core/index.js';
import { requireAllowed } from '../../policy/index.js';
import {
  blockingParams,
  param,
  query,
  requestToken,
  route,
  sendJSON,
} from '../../httpkit/consul-http.js';
import type { TrellisAgent } from '../agent.js';
import { consulMetrics } from '../../telemetry/consul-metrics.js';

/** As Consul decides: `?format=prometheus`, or an Accept header asking for the text format. */
function wantsPrometheus(format: string | undefined, accept: string | undefined): boolean {
  if (format === 'prometheus') return true;
  return (accept ?? '').split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (type === 'application/openmetrics-text') return true;
    return type === 'text/plain' && params.includes('version=0.4.0');
  });
}

export function connectRoutes(app: FastifyInstance, agent: TrellisAgent): void {
  // Consul's path for an agent's metrics; Prometheus scrapes it with ?format=prometheus.
  route(app, ['GET'], '/v1/agent/metrics', async (req, reply) => {
    requireAllowed(
      await agent.resolveToken(requestToken(req)),
      'agent',
      agent.opts.node.node,
      'read',
    );
    if (wantsPrometheus(param(query(req), 'format'), req.headers.accept)) {
      const view = await agent.metricsView();
      reply.type(view.contentType);
      return reply.send(await view.metrics());
    }
    const now = agent.opts.clock.now();
    const metrics = await (await agent.metricsView()).getMetricsAsJSON();
    return sendJSON(reply, consulMetrics(metrics, now, (now - agent.startedAt) / 1000));
  });

  const abortOnClose = (req: FastifyRequest): AbortSignal => {
    const ac = new AbortController();
    req.raw.once('close', () => ac.abort());
    return ac.signal;
  };

  route(app, ['GET'], '/v1/agent/connect/ca/roots', async (req, reply) => {
    const bp = blockingParams(query(req));
    if (bp.index > 0) await agent.leaves.waitRoots(bp.index, bp.waitMs, abortOnClose(req));
    const roots = agent.leaves.roots;
    if (!roots)
      throw new MeshError(
        'MESH_ERR_NO_ROOTS',
        'system',
        'CA roots not known yet: no server reached',
        {
          status: 503,
        },
      );
    reply.header('X-Consul-Index', String(Math.max(1, agent.leaves.rootsIndex)));
    return sendJSON(reply, roots);
  });

  route(app, ['GET'], '/v1/agent/connect/ca/leaf/:service', async (req, reply) => {
    const service = (req.params as { service: string }).service;
    const token = requestToken(req);
    const a = await agent.resolveToken(token);
    requireAllowed(a, 'service', service, 'write');
    const bp = blockingParams(query(req));
    const cert = await agent.leaves.get(service, token, bp.index, bp.waitMs, abortOnClose(req));
    reply.header('X-Consul-Index', String(cert.ModifyIndex));
    return sendJSON(reply, cert);
  });
}
