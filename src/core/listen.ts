/**
 * Small HTTP listeners (metrics port, demo apps): listen, learn the port the kernel chose, and
 * close without waiting for keep-alive clients.
 */
import type { Server } from 'node:http';

export interface Listening {
  /** host:port as bound (IPv6 in brackets), the real port when 0 was asked for. */
  address: string;
  close(): Promise<void>;
}

export async function listenHttp(server: Server, host: string, port: number): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const bound = typeof a === 'object' && a ? a.port : port;
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive clients must not hold the shutdown
      }),
  };
}
