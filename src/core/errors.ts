/**
 * The error catalog. Every error Trellis raises on purpose is a MeshError with a stable code and
 * a kind that decides how each edge reports it:
 *   user   -> bad input: HTTP 4xx, CLI exit 2
 *   peer   -> a remote party failed or refused: HTTP 502/503, CLI exit 1
 *   system -> our own environment failed (disk, bug): HTTP 500, CLI exit 1
 * Messages say what is wrong and, where it helps, what to do.
 */
export type ErrorKind = 'user' | 'peer' | 'system';

export interface MeshErrorOptions {
  cause?: unknown;
  /** HTTP status the API answers with; defaults by kind. */
  status?: number;
  /** The field or parameter at fault, when there is one. */
  field?: string;
}

export class MeshError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly status: number;
  readonly field: string | undefined;

  constructor(code: string, kind: ErrorKind, message: string, opts: MeshErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MeshError';
    this.code = code;
    this.kind = kind;
    this.field = opts.field;
    this.status = opts.status ?? (kind === 'user' ? 400 : kind === 'peer' ? 502 : 500);
  }
}

export function badRequest(message: string, field?: string): MeshError {
  return new MeshError('MESH_ERR_BAD_REQUEST', 'user', message, { status: 400, field });
}

export function notFound(message: string): MeshError {
  return new MeshError('MESH_ERR_NOT_FOUND', 'user', message, { status: 404 });
}

export function permissionDenied(message = 'Permission denied'): MeshError {
  return new MeshError('MESH_ERR_PERMISSION_DENIED', 'user', message, { status: 403 });
}

/** What an ACL refusal was about, for the audit log: never the secret, only the accessor. */
export interface AccessDenial {
  /** The token's accessor id ('' for the anonymous token or an unknown secret). */
  accessor: string;
  /** The permission lacked, as `resource:access` (`service:write`, `operator:read`). */
  permission: string;
  /** The name the permission was asked on ('' for global resources). */
  resource: string;
}

/**
 * An ACL refusal (403). It carries what was refused so the HTTP layer can write the one audit
 * line every refusal gets (httpkit/audit.ts) without parsing messages.
 */
export class AccessDeniedError extends MeshError {
  readonly denial: AccessDenial;

  constructor(message: string, denial: AccessDenial, code = 'MESH_ERR_PERMISSION_DENIED') {
    super(code, 'user', message, { status: 403 });
    this.denial = denial;
  }
}

export function conflict(message: string): MeshError {
  return new MeshError('MESH_ERR_CONFLICT', 'user', message, { status: 409 });
}

export function unavailable(message: string, cause?: unknown): MeshError {
  return new MeshError('MESH_ERR_UNAVAILABLE', 'peer', message, { status: 503, cause });
}

export function storageError(message: string, cause?: unknown): MeshError {
  return new MeshError('MESH_ERR_STORAGE', 'system', message, { status: 500, cause });
}

export function isMeshError(err: unknown): err is MeshError {
  return err instanceof MeshError;
}

/** A one-line description of any thrown value, for logs and messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
