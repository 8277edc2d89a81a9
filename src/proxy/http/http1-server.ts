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
import { REASON, type Reason } from '../reasons.js';
import { REASON_HEADER } from './headers.js';
import { Http1FramingGuard, parseContentLength } from './http1-framing.js';
import { HTTP1_SERVER_LIMITS, MAX_HEADER_COUNT } from './limits.js';

const close = (status: string, extra = ''): string =>
  `HTTP/1.1 ${status}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`;

interface Refusal {
  status: number;
  line: string;
  reason: Reason;
}

const BAD: Refusal = { status: 400, line: '400 Bad Request', reason: REASON.badRequest };
const TOO_BIG: Refusal = {
  status: 431,
  line: '431 Request Header Fields Too Large',
  reason: REASON.badRequest,
};
const TIMEOUT: Refusal = {
  status: 408,
  line: '408 Request Timeout',
  reason: REASON.downstreamTimeout,
};
const TUNNEL: Refusal = { status: 403, line: '403 Forbidden', reason: REASON.unauthorized };

/** What the proxy sends a client that opened a connection and sent nothing in time. */
export const REQUEST_TIMEOUT_RESPONSE = close(
  TIMEOUT.line,
  `${REASON_HEADER}: ${REASON.downstreamTimeout}\r\n`,
);

/** What a parser error becomes on the wire. */
function refusalFor(code: string | undefined): Refusal {
  if (code === 'HPE_HEADER_OVERFLOW') return TOO_BIG;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return TIMEOUT;
  return BAD;
}

/** Told of every request the server refuses itself (for the access log and metrics). */
export type OnRefused = (socket: Socket, status: number, reason: Reason) => void;

/**
 * What Node's parser lets through but a proxy must not forward: too many headers (Node keeps
 * the first maxHeadersCount and drops the rest silently), more than one Host (RFC 9112 3.2),
 * a Transfer-Encoding other than chunked (RFC 9112 6.1; Node emits the request before it
 * fails on it), and targets that are not origin-form (the app and the L7 rules would read
 * different paths). CONNECT never gets here (the 'connect' event).
 */
function requestProblem(req: IncomingMessage): Refusal | undefined {
  if (req.rawHeaders.length / 2 > MAX_HEADER_COUNT) return TOO_BIG;
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return BAD;
  // llhttp accepts HTTP/0.9-style lines (no version) and 2.0; the framing guard refuses them
  // on the wire, this is the same rule for requests that reach a handler.
  if (req.httpVersion !== '1.1' && req.httpVersion !== '1.0') return BAD;
  const cl = req.headers['content-length'];
  if (cl !== undefined && parseContentLength(cl) === undefined) return BAD;
  const te = req.headers['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return BAD;
  const url = req.url ?? '';
  if (!url.startsWith('/') && !(req.method === 'OPTIONS' && url === '*')) return BAD;
  return undefined;
}

/** After a refusal, how long a client that keeps sending may hold the connection. */
const LINGER_MS = 5_000;

/** The refusal, with its reason code, and the connection closed. */
function refuse(socket: Socket, r: Refusal, onRefused: OnRefused | undefined): void {
  onRefused?.(socket, r.status, r.reason);
  if (socket.writable) {
    socket.end(close(r.line, `${REASON_HEADER}: ${r.reason}\r\n`));
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  } else socket.destroy();
}

/** An HTTP/1.1 server for handed connections: serve one with accept(). */
export interface Http1Front {
  readonly server: Server;
  /** Serves `socket`, its bytes checked by the framing guard before the parser reads them. */
  accept(socket: Socket): void;
}

export function createHttp1Server(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  overrides: ServerOptions = {},
  onRefused?: OnRefused,
): Http1Front {
  /** The response a connection is busy with (a guard refusal must not cut into it). */
  const current = new WeakMap<Socket, ServerResponse>();
  const server = createServer({ ...HTTP1_SERVER_LIMITS, ...overrides }, (req, res) => {
    current.set(req.socket, res);
    const problem = requestProblem(req);
    if (!problem) return handler(req, res);
    refuse(req.socket, problem, onRefused);
  });
  // One more than the limit, so requestProblem can tell "too many" from "exactly the limit".
  server.maxHeadersCount = MAX_HEADER_COUNT + 1;
  // Node starts checking headersTimeout and requestTimeout (slowloris, idle new connections)
  // on 'listening', and this server never listens: connections are handed to it.
  server.emit('listening');
  const noTunnel = (_req: unknown, socket: Socket): void => refuse(socket, TUNNEL, onRefused);
  server.on('upgrade', noTunnel);
  server.on('connect', noTunnel);
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) =>
    refuse(socket, refusalFor(err.code), onRefused),
  );
  const guardRefused = (socket: Socket): void => {
    const res = current.get(socket);
    // A response already on the wire cannot be followed by a 400: just end the connection.
    if (res?.headersSent && !res.writableFinished) {
      onRefused?.(socket, BAD.status, BAD.reason);
      socket.destroy();
    } else refuse(socket, BAD, onRefused);
  };
  return {
    server,
    accept(socket) {
      server.emit('connection', socket);
      // node:http reads a socket in C++ ("consumed") until a 'data' listener is added, then
      // through 'data' events: the guard's listener stands in front of the parser's.
      const parserListeners = socket.listeners('data') as ((d: Buffer) => void)[];
      socket.removeAllListeners('data');
      const guard = new Http1FramingGuard();
      let refused = false;
      socket.on('data', (d: Buffer) => {
        if (refused) return; // the parser never sees what follows a refusal
        if (guard.feed(d) !== undefined) {
          refused = true;
          return guardRefused(socket);
        }
        for (const l of parserListeners) l.call(socket, d);
      });
    },
  };
}
