// The agent's DNS server: UDP and TCP (RFC 1035 4.2, 2-octet length prefix; RFC 7766) on the
// same port, answering with answer() and the wire codec. Hostile input never stops it serving.
import dgram from 'node:dgram';
import net from 'node:net';
import type { RecursorAddress } from '../../config/dns-values.js';
import { answer, inMeshDomain, type AnswerOptions, type DnsView } from './answer.js';
import { DEFAULT_RECURSOR_TIMEOUT_MS, forward } from './recursor.js';
import {
  DnsFormatError,
  encodeError,
  encodeResponse,
  parseQuery,
  RCODE,
  TCP_MAX_SIZE,
  udpLimit,
  type Query,
  type Response,
  tcpFrame,
} from './wire.js';

export interface DnsLogger {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface DnsServerOptions extends AnswerOptions {
  host: string;
  /** 0 picks a free port, the same number for UDP and TCP. */
  port: number;
  view: DnsView;
  log?: DnsLogger;
  /** TCP idle timeout, ms (default 10 s). */
  tcpIdleMs?: number;
  /** Most queries queued on one TCP connection before it is closed (default 64). */
  tcpMaxPending?: number;
  /** Most simultaneous TCP connections (default 1024); more are refused by closing them. */
  tcpMaxConnections?: number;
  /** Where names outside the domain go, in order; none: they are refused. */
  recursors?: readonly RecursorAddress[];
  /** Per recursor, ms (default 2 s). */
  recursorTimeoutMs?: number;
}

const empty = (rcode: number): Response => ({
  rcode,
  authoritative: false,
  answers: [],
  authority: [],
  additional: [],
});

/** A relayed answer too big for the client's UDP size: the header and question, with TC. */
function truncated(q: Query, reply: Buffer, maxSize: number): Buffer {
  const b = encodeResponse(q, empty(reply.readUInt16BE(2) & 0xf), maxSize);
  // Keep the recursor's RA bit; TC sends the client to TCP for the whole answer.
  b.writeUInt16BE(b.readUInt16BE(2) | 0x0200 | (reply.readUInt16BE(2) & 0x0080), 2);
  return b;
}

export interface DnsServer {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Answer one raw query: a response buffer, or undefined to drop it silently. */
export async function handleMessage(
  msg: Buffer,
  transport: 'udp' | 'tcp',
  opts: DnsServerOptions,
): Promise<{ reply?: Buffer; formatError: boolean }> {
  let q: Query;
  try {
    q = parseQuery(msg);
  } catch (e) {
    if (e instanceof DnsFormatError && e.id !== undefined) {
      return { reply: encodeError(e.id, RCODE.FORMERR, e.opcode), formatError: true };
    }
    return { formatError: true };
  }
  const maxSize = transport === 'tcp' ? TCP_MAX_SIZE : udpLimit(q);
  if (q.opcode === 0 && opts.recursors?.length && !inMeshDomain(q, opts.domain)) {
    const reply = await forward(msg, q, transport, {
      recursors: opts.recursors,
      timeoutMs: opts.recursorTimeoutMs ?? DEFAULT_RECURSOR_TIMEOUT_MS,
      onSkip: (r, reason) =>
        opts.log?.debug?.(
          { recursor: `${r.host}:${r.port}`, name: q.name, reason },
          'dns: recursor skipped',
        ),
    });
    if (!reply) {
      opts.log?.warn({ name: q.name, qtype: q.qtype }, 'dns: every recursor failed');
      return { reply: encodeResponse(q, empty(RCODE.SERVFAIL), maxSize), formatError: false };
    }
    const fits = transport === 'tcp' || reply.length <= maxSize;
    return { reply: fits ? reply : truncated(q, reply, maxSize), formatError: false };
  }
  try {
    const r = await answer(q, opts.view, opts);
    return { reply: encodeResponse(q, r, maxSize), formatError: false };
  } catch (e) {
    opts.log?.warn({ err: String(e), name: q.name, qtype: q.qtype }, 'dns: answering failed');
    return { reply: encodeResponse(q, empty(RCODE.SERVFAIL), maxSize), formatError: false };
  }
}

function bindUdp(sock: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    sock.once('error', onError);
    sock.bind(port, host, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

function listenTcp(srv: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    srv.once('error', onError);
    srv.listen(port, host, () => {
      srv.off('error', onError);
      resolve();
    });
  });
}

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const { host, log } = opts;
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const maxPending = opts.tcpMaxPending ?? 64;
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';
  const sockets = new Set<net.Socket>();

  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    handleMessage(msg, 'udp', opts).then(
      ({ reply }) => {
        if (reply) udp.send(reply, rinfo.port, rinfo.address, () => undefined);
      },
      (e: unknown) => log?.warn({ err: String(e) }, 'dns: udp handler failed'),
    );
  };

  const onTcp = (sock: net.Socket): void => {
    sockets.add(sock);
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    let chain: Promise<void> = Promise.resolve();
    let closed = false;
    const close = (): void => {
      closed = true;
      sock.destroy();
    };
    sock.setTimeout(idleMs, close);
    sock.on('error', () => close());
    sock.on('close', () => {
      closed = true;
      sockets.delete(sock);
    });
    sock.on('data', (chunk: Buffer) => {
      if (closed) return;
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (len < 12) return close(); // cannot even hold a header: garbage
        if (buffered.length < 2 + len) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + len));
        buffered = buffered.subarray(2 + len);
        if (++pending > maxPending) return close();
        // Answer in order, one at a time per connection.
        chain = chain.then(async () => {
          if (closed) return;
          const { reply, formatError } = await handleMessage(msg, 'tcp', opts);
          pending--;
          if (closed) return;
          if (reply) {
            const framed = tcpFrame(reply);
            if (formatError) sock.end(framed);
            else sock.write(framed);
          }
          if (formatError) {
            closed = true;
            if (!reply) sock.destroy();
          }
        });
        chain.catch(() => close());
      }
      // A length prefix arrives at most 65535 octets ahead of its message; anything larger is
      // impossible (the prefix caps it), so no extra size check is needed beyond maxPending.
    });
  };

  let attempts = 0;
  for (;;) {
    const udp = dgram.createSocket({ type: family, reuseAddr: false });
    const tcp = net.createServer({ pauseOnConnect: false }, onTcp);
    tcp.maxConnections = opts.tcpMaxConnections ?? 1024;
    try {
      await bindUdp(udp, host, opts.port);
      const port = udp.address().port;
      try {
        await listenTcp(tcp, host, port);
      } catch (e) {
        udp.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (opts.port === 0 && code === 'EADDRINUSE' && ++attempts < 20) continue;
        throw e;
      }
      udp.on('message', onUdp(udp));
      udp.on('error', (e) => log?.warn({ err: String(e) }, 'dns: udp socket error'));
      tcp.on('error', (e) => log?.warn({ err: String(e) }, 'dns: tcp server error'));
      log?.debug?.({ host, port }, 'dns: listening on udp and tcp');
      return {
        address: host,
        port,
        close: async () => {
          for (const s of sockets) s.destroy();
          await Promise.all([
            new Promise<void>((resolve) => udp.close(() => resolve())),
            new Promise<void>((resolve) => tcp.close(() => resolve())),
          ]);
        },
      };
    } catch (e) {
      try {
        udp.close();
      } catch {
        // already closed
      }
      throw e;
    }
  }
}
