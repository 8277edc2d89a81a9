/**
 * gRPC checks: the standard health protocol (grpc.health.v1.Health/Check) spoken directly over
 * node:http2. The target is "host:port" or "host:port/service"; SERVING is passing, anything
 * else critical.
 */
import http2 from 'node:http2';
import type { Clock } from '../../core/index.js';
import { describeError, systemClock } from '../../core/index.js';
import type { CheckResult, CheckRunner, GrpcCheckDef } from './types.js';
import { critical, parseHostPort, startDeadline } from './util.js';
import {
  SERVING,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  frameMessage,
  servingStatusName,
  unframeMessage,
} from './grpc-wire.js';

const CHECK_PATH = '/grpc.health.v1.Health/Check';
/** A health response is a few bytes; anything past this is not one. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export interface GrpcTarget {
  host: string;
  port: number;
  service: string;
}

/** Splits "host:port/service" (service optional); undefined when malformed. */
export function parseGrpcTarget(text: string): GrpcTarget | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const hp = parseHostPort(address);
  return hp && { ...hp, service: slash < 0 ? '' : text.slice(slash + 1) };
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decodeGrpcMessage(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export class GrpcCheck implements CheckRunner<'grpc'> {
  readonly kind = 'grpc' as const;

  constructor(
    private readonly def: GrpcCheckDef,
    private readonly clock: Clock = systemClock,
  ) {}

  async run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
    const label = `gRPC check ${this.def.GRPC}`;
    const target = parseGrpcTarget(this.def.GRPC);
    if (!target) return critical(`${label}: not a host:port[/service] address`);
    const deadline = startDeadline(this.clock, timeoutMs, signal);
    try {
      const status = await this.call(target, timeoutMs, deadline.signal);
      if (status === SERVING) return { status: 'passing', output: `${label}: success` };
      return critical(`${label}: failed: service is ${servingStatusName(status)}`);
    } catch (err) {
      return critical(`${label}: failed: ${deadline.reason() ?? describeError(err)}`);
    } finally {
      deadline.dispose();
    }
  }

  private call(target: GrpcTarget, timeoutMs: number, signal: AbortSignal): Promise<number> {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const tls = this.def.GRPCUseTLS === true;
    const options: http2.SecureClientSessionOptions = {};
    if (tls) {
      options.rejectUnauthorized = !this.def.TLSSkipVerify;
      if (this.def.TLSServerName) options.servername = this.def.TLSServerName;
    }
    return new Promise<number>((resolve, reject) => {
      const session = http2.connect(`${tls ? 'https' : 'http'}://${host}:${target.port}`, options);
      let settled = false;
      const settle = (err: unknown, status?: number): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        session.destroy();
        if (err === undefined) resolve(status!);
        else reject(err);
      };
      const onAbort = (): void => settle(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      session.on('error', (err) => settle(err));

      const req = session.request({
        ':method': 'POST',
        ':path': CHECK_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
        'user-agent': 'trellis-health-check',
      });
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      const chunks: Buffer[] = [];
      let size = 0;
      const noteStatus = (h: http2.IncomingHttpHeaders): void => {
        grpcStatus = header(h, 'grpc-status') ?? grpcStatus;
        grpcMessage = header(h, 'grpc-message') ?? grpcMessage;
      };
      req.on('response', (h) => {
        httpStatus = Number(h[':status']);
        noteStatus(h); // a "trailers-only" answer carries grpc-status in the headers
      });
      req.on('trailers', noteStatus);
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) settle(new Error('response is too large'));
        else chunks.push(chunk);
      });
      req.on('error', (err) => settle(err));
      // 'end' settles first when the answer is whole; this catches a stream cut short
      req.on('close', () => settle(new Error('stream closed before the response ended')));
      req.on('end', () => {
        try {
          if (httpStatus !== 200) throw new Error(`HTTP/2 status ${httpStatus}`);
          if (grpcStatus === undefined) throw new Error('response has no grpc-status');
          if (grpcStatus !== '0') {
            const name = GRPC_CODES[Number(grpcStatus)] ?? 'UNKNOWN';
            const msg = grpcMessage ? `: ${decodeGrpcMessage(grpcMessage)}` : '';
            throw new Error(`grpc-status ${grpcStatus} (${name})${msg}`);
          }
          settle(undefined, decodeHealthCheckResponse(unframeMessage(Buffer.concat(chunks))));
        } catch (err) {
          settle(err);
        }
      });
      req.end(frameMessage(encodeHealthCheckRequest(target.service)));
    });
  }
}
