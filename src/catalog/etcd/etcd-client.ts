/**
 * The connection to etcd: endpoints, TLS (a CA to trust, a client certificate) and user/password
 * authentication, through the `etcd3` client (pure JavaScript over @grpc/grpc-js).
 */
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';

export interface EtcdConnectionOptions {
  /** Client URLs, all http:// or all https://. */
  endpoints: string[];
  /** Key prefix of this cluster's data (default /trellis). */
  prefix: string;
  /** PEM files' contents; `ca` unset with https endpoints means the system's trusted roots. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { username: string; password: string };
  /** How long a request to etcd may take before the write is refused (ms, default 10 s). */
  requestTimeoutMs?: number;
}

export const DEFAULT_ETCD_PREFIX = '/trellis';
export const DEFAULT_ETCD_REQUEST_TIMEOUT_MS = 10_000;

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * Reconnects a broken watch after 100 ms, doubling up to 2 s: the client's default waits up to
 * 30 s, and every server's state stays behind for as long as its watch is down.
 */
class ShortBackoff implements WatchBackoff {
  constructor(readonly duration = 100) {}
  next(): WatchBackoff {
    return new ShortBackoff(Math.min(this.duration * 2, 2_000));
  }
}

export function connectEtcd(opts: EtcdConnectionOptions): Etcd3 {
  const tls = opts.tls;
  return new Etcd3({
    hosts: opts.endpoints,
    ...(tls
      ? {
          credentials: {
            // grpc-js takes null as "the system's roots"; the client's type insists on a Buffer.
            rootCertificate: tls.ca ?? (null as unknown as Buffer),
            ...(tls.key ? { privateKey: tls.key } : {}),
            ...(tls.cert ? { certChain: tls.cert } : {}),
          },
        }
      : {}),
    ...(opts.auth ? { auth: { username: opts.auth.username, password: opts.auth.password } } : {}),
    dialTimeout: opts.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS,
    // A snapshot or a long log is read in one response; grpc's default cap is 4 MiB.
    grpcOptions: { 'grpc.max_receive_message_length': 512 * 1024 * 1024 },
    // No circuit breaker per member: the client's default opens a member's circuit for 5 s after
    // 3 failures, and during an etcd leader change every live member answers "no leader" a few
    // times, so all circuits opened and every write failed for seconds after one member died.
    // Calls go to a random member, are retried on others (3 attempts) and, for log puts, again
    // by EtcdLog until the request timeout.
    faultHandling: { host: () => noop, watchBackoff: new ShortBackoff() },
  });
}
