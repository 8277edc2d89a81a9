/**
 * Opening and closing the proxy's listeners. A listener that cannot be opened fails with a
 * ListenError whose message says why in an operator's words (it becomes the sidecar's check
 * output), e.g. `port 21001 is in use by another process (EADDRINUSE)`.
 */
import type { Server } from 'node:net';

export class ListenError extends Error {
  constructor(
    readonly address: string,
    readonly port: number,
    readonly code: string | undefined,
    readonly detail: string,
  ) {
    super(`cannot listen on ${joinHostPort(address, port)}: ${listenFailure(port, code, detail)}`);
    this.name = 'ListenError';
  }
}

function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function listenFailure(port: number, code: string | undefined, detail: string): string {
  switch (code) {
    case 'EADDRINUSE':
      return `port ${port} is in use by another process (EADDRINUSE)`;
    case 'EACCES':
      return `permission denied (EACCES); ports below 1024 need privileges`;
    case 'EADDRNOTAVAIL':
      return `the address is not one of this host's (EADDRNOTAVAIL)`;
    default:
      return code ? `${detail} (${code})` : detail;
  }
}

export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(new ListenError(host, port, err.code, err.message));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Stops accepting at once (the port is free when this returns); open connections go on.
 * The promise resolves once they have all ended.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
