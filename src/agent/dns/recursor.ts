/**
 * Names outside the mesh domain, forwarded to upstream DNS servers (Consul's `recursors`): tried
 * in order, over the client's transport (a truncated UDP answer is asked again over TCP), each
 * for at most `timeoutMs`. A recursor that times out, errs, answers garbage or answers with an
 * rcode other than NOERROR/NXDOMAIN is skipped for the next. The answer is relayed byte for byte
 * with the client's query id. The upstream query gets a fresh random id, and only a well-formed
 * response from the recursor's address, with that id and the same question, is accepted.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { RecursorAddress } from '../../config/dns-values.js';
import { decodeResponse, ipv6Bytes, RCODE, TCP_MAX_SIZE, tcpFrame, type Query } from './wire.js';

export interface ForwardOptions {
  recursors: readonly RecursorAddress[];
  /** Per recursor and transport, ms (Consul's recursor_timeout, default 2 s). */
  timeoutMs: number;
  /** The upstream query id; random by default. */
  newId?: () => number;
  /** Told why a recursor was skipped. */
  onSkip?: (recursor: RecursorAddress, reason: string) => void;
}

export const DEFAULT_RECURSOR_TIMEOUT_MS = 2000;

const TC = 0x0200;
const QR = 0x8000;

/** The relayed answer (with the client's id), or undefined when every recursor failed. */
export async function forward(
  msg: Buffer,
  q: Query,
  transport: 'udp' | 'tcp',
  opts: ForwardOptions,
): Promise<Buffer | undefined> {
  for (const r of opts.recursors) {
    const id = opts.newId ? opts.newId() & 0xffff : randomInt(0, 0x10000);
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    try {
      let reply =
        transport === 'udp'
          ? await udpExchange(r, out, id, q, opts.timeoutMs)
          : await tcpExchange(r, out, id, q, opts.timeoutMs);
      if (transport === 'udp' && reply.readUInt16BE(2) & TC)
        reply = await tcpExchange(r, out, id, q, opts.timeoutMs);
      const rcode = reply.readUInt16BE(2) & 0xf;
      if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
        opts.onSkip?.(r, `answered rcode ${rcode}`);
        continue;
      }
      const relayed = Buffer.from(reply);
      relayed.writeUInt16BE(q.id, 0);
      return relayed;
    } catch (err) {
      opts.onSkip?.(r, (err as Error).message);
    }
  }
  return undefined;
}

/**
 * Why `buf` is not the answer to our query, or undefined when it is. A truncated answer only
 * needs a matching header: its records may have been cut anywhere.
 */
function unusable(buf: Buffer, id: number, q: Query, udp: boolean): string | undefined {
  if (buf.length < 12) return 'answer shorter than a header';
  const flags = buf.readUInt16BE(2);
  if (buf.readUInt16BE(0) !== id) return 'answer for another query id';
  if (!(flags & QR)) return 'not a response';
  if (udp && flags & TC) return undefined;
  let question;
  try {
    question = decodeResponse(buf).question;
  } catch (err) {
    return `malformed answer: ${(err as Error).message}`;
  }
  if (
    !question ||
    question.name !== q.name ||
    question.qtype !== q.qtype ||
    question.qclass !== q.qclass
  )
    return 'answer for another question';
  return undefined;
}

function sameHost(a: string, b: string): boolean {
  if (net.isIPv6(a) && net.isIPv6(b)) return ipv6Bytes(a).equals(ipv6Bytes(b));
  return a === b;
}

function udpExchange(
  r: RecursorAddress,
  out: Buffer,
  id: number,
  q: Query,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(r.host) ? 'udp6' : 'udp4');
    let settled = false;
    const done = (err: Error | undefined, reply?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeAllListeners('message');
      sock.on('error', () => undefined);
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new Error(`no answer over udp in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('error', (err) => done(err));
    // Anything else arriving on our port (stray or spoofed packets) is ignored until the timeout.
    sock.on('message', (m, rinfo) => {
      if (rinfo.port !== r.port || !sameHost(rinfo.address, r.host)) return;
      if (unusable(m, id, q, true) === undefined) done(undefined, m);
    });
    sock.send(out, r.port, r.host, (err) => {
      if (err) done(err);
    });
  });
}

function tcpExchange(
  r: RecursorAddress,
  out: Buffer,
  id: number,
  q: Query,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    let settled = false;
    const sock = net.connect({ host: r.host, port: r.port });
    const done = (err: Error | undefined, reply?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new Error(`no answer over tcp in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('error', (err) => done(err));
    sock.on('close', () => done(new Error('connection closed before an answer')));
    sock.on('connect', () => {
      sock.write(tcpFrame(out));
    });
    sock.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > 2 + TCP_MAX_SIZE) return done(new Error('answer too long'));
      if (buffered.length < 2) return;
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      const reply = Buffer.from(buffered.subarray(2, 2 + len));
      const why = unusable(reply, id, q, false);
      if (why !== undefined) return done(new Error(why));
      // A truncated answer over TCP is as complete as it gets.
      done(undefined, reply);
    });
  });
}
