/**
 * Forwards catalog, health, KV, session, txn and status calls from the agent's local API to a
 * server, byte for byte (status, Consul headers, body). A connection failure moves on to the
 * next server; an HTTP answer (even an error) is passed back as it is.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { isObject } from '../../api/index.js';
import {
  currentTlsConnector,
  mayRetryElsewhere,
  UndiciAgent,
  type TlsOptions,
} from '../../client/index.js';
import { badRequest, describeError, unavailable } from '../../core/index.js';
import { jsonBody } from '../../httpkit/consul-http.js';

const FORWARDED_PREFIXES = [
  '/v1/catalog/',
  '/v1/health/',
  '/v1/kv/',
  '/v1/kv',
  '/v1/txn',
  '/v1/session/',
  '/v1/status/',
  '/v1/internal/trellis/',
  '/v1/acl/',
  '/v1/connect/',
  '/v1/config',
  '/v1/config/',
  '/v1/event/',
  '/v1/query',
  '/v1/query/',
  '/v1/coordinate/',
  '/v1/operator/',
];
/**
 * Tells the server which agent a request came through (the events meant for this node,
 * `near=_agent`); any value the client sent is replaced. Must match catalog/http/agent-node.ts.
 */
const AGENT_NODE_HEADER = 'x-trellis-agent-node';
const PASS_HEADERS = [
  'content-type',
  'x-consul-index',
  'x-consul-knownleader',
  'x-consul-lastcontact',
  'x-consul-results-filtered-by-acls',
  'x-consul-effective-consistency',
  'x-consul-default-acl-policy',
  'x-trellis-failover-skipped',
];

export interface Forwarder {
  /** Forwards the request; `body` replaces the request's own body when given. */
  forward(req: FastifyRequest, reply: FastifyReply, body?: Buffer): Promise<FastifyReply>;
  close(): Promise<void>;
}

function toOrigin(addr: string, tls: boolean): string {
  return /^https?:\/\//.test(addr)
    ? addr.replace(/\/+$/, '')
    : `${tls ? 'https' : 'http'}://${addr}`;
}

/** `servers` is read at each request: servers added by /v1/agent/join are used at once. */
export function createForwarder(
  servers: () => readonly string[],
  tls?: TlsOptions,
  nodeName?: string,
): Forwarder {
  // Blocking queries may be held up to 10m + jitter by the server.
  const dispatcher: Dispatcher = new UndiciAgent({
    // The agent's own (renewed) certificate and the current roots, at each connection.
    ...(tls ? { connect: currentTlsConnector(tls, 5_000) } : {}),
    headersTimeout: 11 * 60_000,
    bodyTimeout: 11 * 60_000,
    keepAliveTimeout: 30_000,
    connectTimeout: 5_000,
  });
  let preferred = 0;

  return {
    async forward(req, reply, replacement) {
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'x-consul-token', 'authorization']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      if (nodeName) headers[AGENT_NODE_HEADER] = nodeName;
      const body = replacement ?? (Buffer.isBuffer(req.body) ? req.body : undefined);
      const ac = new AbortController();
      const onClose = (): void => ac.abort();
      reply.raw.once('close', onClose);
      const errors: string[] = [];
      const origins = servers().map((a) => toOrigin(a, tls !== undefined));
      try {
        for (let i = 0; i < origins.length; i++) {
          const at = (preferred + i) % origins.length;
          try {
            const res = await dispatcher.request({
              origin: origins[at]!,
              path: req.url,
              method: req.method as Dispatcher.HttpMethod,
              headers,
              body,
              signal: ac.signal,
            });
            preferred = at;
            const payload = Buffer.from(await res.body.arrayBuffer());
            reply.code(res.statusCode);
            for (const h of PASS_HEADERS) {
              const v = res.headers[h];
              if (typeof v === 'string') reply.header(h, v);
            }
            return reply.send(payload);
          } catch (err) {
            if (ac.signal.aborted) return reply;
            errors.push(`${origins[at]}: ${describeError(err)}`);
            if (!mayRetryElsewhere(req.method, err)) break;
          }
        }
      } finally {
        reply.raw.off('close', onClose);
      }
      throw unavailable(`No server reachable (${errors.join('; ')})`);
    },
    close: () => dispatcher.close(),
  };
}

/**
 * Mounts the forwarder on every path the servers answer. Sessions created through an agent
 * belong to the agent's node unless the body names one, as in Consul.
 */
export function forwardRoutes(app: FastifyInstance, fwd: Forwarder, nodeName: string): void {
  app.route({
    method: ['PUT'],
    url: '/v1/session/create',
    handler: (req, reply) => {
      const raw = jsonBody(req);
      const body = raw === undefined ? {} : raw;
      if (!isObject(body)) throw badRequest('Request body must be a JSON object', 'body');
      const hasNode = Object.keys(body).some((k) => k.toLowerCase() === 'node');
      return fwd.forward(
        req,
        reply,
        Buffer.from(JSON.stringify(hasNode ? body : { ...body, Node: nodeName })),
      );
    },
  });
  const handler = (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    fwd.forward(req, reply);
  for (const p of FORWARDED_PREFIXES) {
    const url = p.endsWith('/') ? `${p}*` : p;
    app.route({ method: ['GET', 'PUT', 'POST', 'DELETE'], url, handler });
  }
}
