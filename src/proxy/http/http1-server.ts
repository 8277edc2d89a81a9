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
import { HTTP1_SERVER_LIMITS } from './limits.js';

const close = (status: string, extra = ''): string =>
  `HTTP/1.1 ${status}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`;

/** What a parser error becomes on the wire. */
function answerFor(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return close('431 Request Header Fields Too Large');
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return close('408 Request Timeout');
  return close('400 Bad Request');
}

export function createHttp1Server(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  overrides: ServerOptions = {},
): Server {
  const server = createServer({ ...HTTP1_SERVER_LIMITS, ...overrides }, handler);
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
