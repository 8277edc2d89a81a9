/**
 * Connection limits for the HTTP API listeners (Consul's `limits.http_max_conns_per_client`,
 * CVE-2020-7219): at most `maxPerClient` open connections from one client address, and a
 * connection must send its first request within `handshakeTimeoutMs` (for HTTPS the TLS
 * handshake counts too), so idle connections cannot pile up.
 *
 * The gate sits in front of Node's own 'connection' handling: a connection over the limit never
 * reaches the HTTP parser (so its request is never run); on plain HTTP it gets a 429 written
 * straight to the socket, on HTTPS it is closed before the TLS handshake (the expensive part,
 * and a TLS client could not read a plain-text answer anyway). Applies to every address,
 * loopback included, as Consul does; 0 turns the per-client limit off.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections allowed from one client address; 0 = no limit. Default 200. */
  maxPerClient: number;
  /** Time a new connection has to send its first request (ms); 0 = none. Default 5000. */
  handshakeTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxPerClient: 200,
  handshakeTimeoutMs: 5_000,
};

/** How long a refused client gets to read its 429 before the socket is destroyed. */
const REFUSED_LINGER_MS = 1_000;

const REFUSED_BODY = (max: number): string =>
  `Too many connections from this address (limit ${max} per client address; ` +
  'http_max_conns_per_client). Close idle connections or reuse them.\n';

function refusal(max: number): string {
  const body = REFUSED_BODY(max);
  return (
    'HTTP/1.1 429 Too Many Requests\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    'Connection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export function clientAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export interface ConnectionGate {
  /** Open connections per client address (for tests and metrics). */
  open(address: string): number;
}

/**
 * Installs the limits on an http.Server or https.Server (before it listens). `tls`: the server
 * is an https.Server (refused connections are closed rather than answered).
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits,
  tls: boolean,
): ConnectionGate {
  const open = new Map<string, number>();
  const max = limits.maxPerClient;
  // Node's own listeners (the HTTP parser, or the TLS wrapper) run only for admitted sockets.
  const inner = server.listeners('connection') as ((s: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const addr = clientAddress(socket);
    const n = (open.get(addr) ?? 0) + 1;
    if (max > 0 && n > max) {
      socket.on('error', () => {});
      if (tls) socket.destroy();
      else {
        socket.end(refusal(max));
        setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
      }
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
    if (limits.handshakeTimeoutMs > 0 && !tls) armFirstRequest(socket, limits.handshakeTimeoutMs);
    for (const l of inner) l.call(server, socket);
  });
  if (limits.handshakeTimeoutMs > 0) {
    if (tls) {
      // The TLS socket is what the HTTP layer sees: arm it once the handshake is done (Node's
      // handshakeTimeout, set by the caller, covers the handshake itself).
      server.prependListener('secureConnection', (s: Socket) =>
        armFirstRequest(s, limits.handshakeTimeoutMs),
      );
    }
    // The first request disarms the timer: a request may then take as long as it needs (a
    // blocking query waits up to 10 minutes); between requests Node's keep-alive timeout rules.
    server.prependListener('request', (req: { socket: Socket }) => {
      const s = req.socket as Socket & { [AWAITING]?: boolean };
      if (s[AWAITING]) {
        s[AWAITING] = false;
        s.setTimeout(0);
      }
    });
  }
  return { open: (address) => open.get(address) ?? 0 };
}

const AWAITING = Symbol('awaiting-first-request');

/** Destroys the socket unless a request arrives within `ms` (Node's own timeout handling). */
function armFirstRequest(socket: Socket & { [AWAITING]?: boolean }, ms: number): void {
  socket[AWAITING] = true;
  socket.setTimeout(ms);
  // Node's HTTP layer destroys a socket whose timeout nobody handles; make sure of it.
  socket.once('timeout', () => {
    if (socket[AWAITING]) socket.destroy();
  });
}
