/**
 * How the client turns failures into MeshErrors: HTTP error statuses keep the server's
 * plain-text message; connection failures are told apart from everything else so the
 * transport knows when trying another address can help.
 */
import {
  MeshError,
  badRequest,
  conflict,
  describeError,
  notFound,
  permissionDenied,
} from '../core/index.js';

/** A non-2xx answer from the server. `message` is the server's own text. */
export class HttpStatusError extends MeshError {
  readonly method: string;
  readonly path: string;
  /** The address that answered. */
  readonly address: string;

  constructor(base: MeshError, request: { method: string; path: string; address: string }) {
    super(base.code, base.kind, base.message, { status: base.status, field: base.field });
    this.name = 'HttpStatusError';
    this.method = request.method;
    this.path = request.path;
    this.address = request.address;
  }
}

/** Classifies an HTTP error status: 4xx are the caller's fault ('user'), 5xx the server's. */
export function statusError(
  status: number,
  text: string,
  request: { method: string; path: string; address: string },
): HttpStatusError {
  const message = text.trim() || `HTTP ${status}`;
  return new HttpStatusError(classify(status, message), request);
}

function classify(status: number, message: string): MeshError {
  switch (status) {
    case 400:
      return badRequest(message);
    case 403:
      return permissionDenied(message);
    case 404:
      return notFound(message);
    case 409:
      return conflict(message);
    case 413:
      return new MeshError('MESH_ERR_TOO_LARGE', 'user', message, { status });
  }
  // 429 means "slow down", which is the server's condition rather than a bad request.
  if (status >= 400 && status < 500 && status !== 429) {
    return new MeshError('MESH_ERR_REQUEST_REJECTED', 'user', message, { status });
  }
  return new MeshError('MESH_ERR_SERVER', 'peer', message, { status });
}

/** Error codes that mean the request was malformed locally; another address cannot help. */
const LOCAL_ERROR_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_INVALID_RETURN_VALUE',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_URL',
]);

/**
 * True when an error thrown while sending a request means the connection failed (refused,
 * reset, unreachable, TLS handshake, timeout), as opposed to a bug in the request itself.
 */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof MeshError || err instanceof TypeError || err instanceof RangeError) {
    return false;
  }
  const code = (err as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && LOCAL_ERROR_CODES.has(code));
}

/** Failures that prove the request never reached the server: safe to send elsewhere. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether a failed request may be tried at the next server. Reads always may; a write only
 * when it certainly was not delivered, since a write that reached a server and lost its answer
 * must not be applied twice (a repeated CAS would report a conflict for its own success).
 */
export function mayRetryElsewhere(method: string, err: unknown): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  let cause: unknown = err;
  for (let depth = 0; cause && depth < 4; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

/** Short reason for one failed address, e.g. "ECONNREFUSED" or "timed out after 5000ms". */
export function failureReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  if (isPlainHttpAnswer(err))
    return 'it answered in plain HTTP, not HTTPS: give the HTTPS address (--https-bind, port 8501 by default)';
  return describeError(err);
}

/** A TLS handshake that met a plain-HTTP server: OpenSSL's "wrong version number". */
export function isPlainHttpAnswer(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const x = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (x.code === 'ERR_SSL_WRONG_VERSION_NUMBER') return true;
    if (typeof x.message === 'string' && /wrong version number/.test(x.message)) return true;
    e = x.cause;
  }
  return false;
}
