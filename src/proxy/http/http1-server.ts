/**
 * The HTTP/1.1 server both proxy sides use (it never listens itself: connections are handed
 * to it). Strict parsing and the limits in limits.ts; Upgrade and CONNECT are refused so
 * nothing tunnels around L7 policy; a request the parser rejects gets the status that says why
 * and the connection is closed.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { REASON } from '../reasons.js';
import { REASON_HEADER } from './headers.js';
import { HTTP1_SERVER_LIMITS, MAX_HEADER_COUNT } from './limits.js';

const close = (status: string, extra = ''): string =>
  `HTTP/1.1 ${status}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`;

/** What a parser error becomes on the wire. */
function answerFor(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return close('431 Request Header Fields Too Large');
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return close('408 Request Timeout');
  return close('400 Bad Request');
}

/**
 * What Node's parser lets through but a proxy must not forward: too many headers (Node keeps
 * the first maxHeadersCount and drops the rest silently), more than one Host (RFC 9112 3.2),
 * a Transfer-Encoding other than chunked (RFC 9112 6.1; Node emits the request before it
 * fails on it), and targets that are not origin-form (the app and the L7 rules would read
 * different paths). CONNECT never gets here (the 'connect' event).
 */
function requestProblem(req: IncomingMessage): string | undefined {
  if (req.rawHeaders.length / 2 > MAX_HEADER_COUNT) return '431 Request Header Fields Too Large';
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return '400 Bad Request';
  const te = req.headers['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return '400 Bad Request';
  const url = req.url ?? '';
  if (!url.startsWith('/') && !(req.method === 'OPTIONS' && url === '*')) return '400 Bad Request';
  return undefined;
}

export function createHttp1Server(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  overrides: ServerOptions = {},
): Server {
  const server = createServer({ ...HTTP1_SERVER_LIMITS, ...overrides }, (req, res) => {
    const problem = requestProblem(req);
    if (!problem) return handler(req, res);
    req.socket.end(close(problem, `${REASON_HEADER}: ${REASON.badRequest}\r\n`));
  });
  // One more than the limit, so requestProblem can tell "too many" from "exactly the limit".
  server.maxHeadersCount = MAX_HEADER_COUNT + 1;
  // Node starts checking headersTimeout and requestTimeout (slowloris, idle new connections)
  // on 'listening', and this server never listens: connections are handed to it.
  server.emit('listening');
  const noTunnel = (_req: unknown, socket: Socket): void => {
    socket.end(close('403 Forbidden', `${REASON_HEADER}: ${REASON.unauthorized}\r\n`));
  };
  server.on('upgrade', noTunnel);
  server.on('connect', noTunnel);
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (socket.writable) socket.end(answerFor(err.code));
    else socket.destroy();
  });
  return server;
}
