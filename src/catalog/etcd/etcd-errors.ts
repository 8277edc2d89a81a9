/**
 * What an etcd failure means to an operator, in one line that names etcd and the cause: the API
 * answers a failed write with it (500), and the logs carry it.
 */
import { describeError, storageError, type MeshError } from '../../core/index.js';

/** Why etcd did not answer: quorum loss and unreachable endpoints are said plainly. */
export function etcdCause(err: unknown): string {
  const text = describeError(err);
  if (/no leader|request timed out|leader changed|DEADLINE_EXCEEDED|deadline exceeded/i.test(text))
    return `etcd did not commit the request in time; the cluster may have lost quorum (${text})`;
  if (/UNAVAILABLE|ECONNREFUSED|No connection established|failed to connect/i.test(text))
    return `no etcd endpoint could be reached (${text})`;
  if (/permission denied|authentication failed|invalid auth token|user name is empty/i.test(text))
    return `etcd refused the credentials (${text})`;
  if (/request is too large|message larger than max/i.test(text))
    return `etcd refused the request as too large (${text})`;
  return `etcd error: ${text}`;
}

/** A rejected write: the message says it may or may not have been made when etcd was unclear. */
export function etcdWriteError(err: unknown): MeshError {
  return storageError(
    `the write was not confirmed by etcd (a write needs a quorum, a majority of etcd's members, ` +
      `up and reachable): ${etcdCause(err)}; if etcd took it before failing, it is applied once`,
    err,
  );
}
