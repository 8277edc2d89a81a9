/** host:port helpers for the composition roots. */
import { createServer } from 'node:net';

export function splitHostPort(addr: string, defPort: number): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  return { host: addr, port: defPort };
}

export function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Replaces port 0 with a free port, so the address is known before the server starts (the
 * server's own agent talks to it over HTTP and needs the real port up front).
 */
export async function concretePort(bind: string, defPort: number): Promise<string> {
  const { host, port } = splitHostPort(bind, defPort);
  if (port !== 0) return joinHostPort(host, port);
  const free = await new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  return joinHostPort(host, free);
}

/** The address a local client dials to reach a listener bound to `bind`. */
export function dialable(bind: string, defPort: number): string {
  const { host, port } = splitHostPort(bind, defPort);
  if (host === '0.0.0.0' || host === '') return joinHostPort('127.0.0.1', port);
  if (host === '::') return joinHostPort('::1', port);
  return joinHostPort(host, port);
}
