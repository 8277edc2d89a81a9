/**
 * HTTP/1.1 behind the inbound mTLS listener, for services whose protocol is http: every
 * request is decided by the intentions in force at that moment (so a changed intention applies
 * to the next request on a kept-alive connection), then forwarded to the local application
 * with hop-by-hop headers removed and the verified caller in X-Forwarded-Client-Cert.
 *
 * Node's parser is strict (no obsolete line folding, conflicting Content-Length and
 * Transfer-Encoding refused); header size and time limits bound what a client can hold;
 * Upgrade and CONNECT are refused so nothing tunnels around L7 policy.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { decide } from '../../policy/index.js';
import type { ProxyPlan } from '../plan.js';
import { REASON, type Reason } from '../reasons.js';

export interface Caller {
  service: string;
  uri: string;
}

export interface InboundHttpDeps {
  plan(): ProxyPlan | undefined;
  callerOf(socket: Socket): Caller | undefined;
  log: { info(obj: object, msg: string): void };
}

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Caller-identity headers only the proxy may set. */
const IDENTITY_HEADERS = new Set(['x-forwarded-client-cert']);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k) || IDENTITY_HEADERS.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function headerMap(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

function refuse(
  res: import('node:http').ServerResponse,
  status: number,
  reason: Reason,
  body: string,
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-trellis-reason': reason,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function createInboundHttpServer(deps: InboundHttpDeps): Server {
  const server = createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 5_000,
      insecureHTTPParser: false,
    },
    (req, res) => {
      const plan = deps.plan();
      const caller = deps.callerOf(req.socket);
      if (!plan || !caller) return refuse(res, 503, REASON.noPlan, 'no plan\n');
      const path = (req.url ?? '/').split('?')[0]!;
      const d = decide(
        plan.intentions,
        {
          source: caller.service,
          destination: plan.service,
          http: { path, method: req.method ?? 'GET', headers: headerMap(req.headers) },
        },
        plan.defaultAllow,
      );
      if (!d.allowed) {
        deps.log.info(
          {
            service: plan.service,
            source: caller.service,
            path,
            reason: REASON.unauthorized,
            why: d.reason,
          },
          'request refused',
        );
        return refuse(res, 403, REASON.unauthorized, 'RBAC: access denied\n');
      }
      const headers = forwardable(req.headers);
      headers['x-forwarded-client-cert'] = `By=${plan.identity};URI=${caller.uri}`;
      const up = request({
        host: plan.inbound.localApp.address,
        port: plan.inbound.localApp.port,
        method: req.method,
        path: req.url,
        headers,
      });
      up.on('response', (r) => {
        res.writeHead(r.statusCode ?? 502, forwardable(r.headers));
        r.pipe(res);
      });
      up.on('error', (err) => {
        deps.log.info(
          { service: plan.service, reason: REASON.localAppUnreachable, err: err.message },
          'local app failed',
        );
        if (!res.headersSent)
          refuse(res, 503, REASON.localAppUnreachable, 'local application unavailable\n');
        else res.destroy();
      });
      req.pipe(up);
    },
  );
  const noTunnel = (_req: unknown, socket: Socket): void => {
    socket.end(
      'HTTP/1.1 403 Forbidden\r\nx-trellis-reason: UAEX\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
  };
  server.on('upgrade', noTunnel);
  server.on('connect', noTunnel);
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
