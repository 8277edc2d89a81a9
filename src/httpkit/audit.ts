/**
 * The audit log: one structured line for every ACL refusal and every CA operation, so an
 * operator can answer "who tried what, from where". Lines carry a stable `audit` field naming
 * the event (docs/security.md lists them) and never a secret: tokens appear by accessor only.
 *
 *   {"component":"audit","audit":"acl.denied","accessor":"…","permission":"service:write",
 *    "resource":"sb","remote":"127.0.0.1","method":"PUT","path":"/v1/catalog/register",
 *    "msg":"permission denied"}
 */
import type { FastifyRequest } from 'fastify';
import type { AccessDenial } from '../core/index.js';

/** Where audit lines go: a pino logger (the binary gives one that is always at info). */
export interface AuditSink {
  info(obj: object, msg: string): void;
}

export type AuditEvent = 'acl.denied' | 'ca.sign' | 'ca.rotate' | 'ca.prune' | 'ca.config';

/** Who asked for an operation: the token's accessor and the connection's remote address. */
export interface AuditActor {
  /** Accessor id; '' for the anonymous token, 'internal' for the server's own timers. */
  accessor: string;
  remote: string;
}

/** The caller of a request, for audit lines. */
export function requestActor(req: FastifyRequest, accessor: string): AuditActor {
  return { accessor, remote: remoteAddress(req) };
}

/** The peer address of the request's connection (never a client-supplied header). */
export function remoteAddress(req: FastifyRequest): string {
  const a = req.raw.socket?.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The request path without its query (which may hold `?token=`). */
function pathOf(req: FastifyRequest): string {
  const url = req.raw.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export class AuditLog {
  readonly #sink: AuditSink;

  constructor(sink: AuditSink) {
    this.#sink = sink;
  }

  /** One ACL refusal answered to `req`. */
  denied(req: FastifyRequest, d: AccessDenial): void {
    this.#sink.info(
      {
        audit: 'acl.denied' satisfies AuditEvent,
        accessor: d.accessor,
        permission: d.permission,
        resource: d.resource,
        remote: remoteAddress(req),
        method: req.method,
        path: pathOf(req),
      },
      'permission denied',
    );
  }

  /**
   * One CA operation, done or refused. `fields` says what it was about (service, node, root
   * ids, serial); `error` is set when it failed.
   */
  ca(
    event: Exclude<AuditEvent, 'acl.denied'>,
    actor: AuditActor,
    fields: object,
    error?: string,
  ): void {
    this.#sink.info(
      {
        audit: event,
        accessor: actor.accessor,
        remote: actor.remote,
        ...fields,
        outcome: error === undefined ? 'ok' : 'failed',
        ...(error === undefined ? {} : { error }),
      },
      `CA ${event.slice(3)} ${error === undefined ? 'done' : 'failed'}`,
    );
  }
}

/** An audit log that writes nowhere (tests and tools that do not need one). */
export const NO_AUDIT = new AuditLog({ info() {} });
