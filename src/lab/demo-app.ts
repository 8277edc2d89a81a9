/**
 * The lab's demo application (`trellis demo-app`): answers every request with 200 and
 * `hello from NAME on HOST`. Logs nothing per request; the lab's logs stay about the mesh.
 */
import { createServer, type Server } from 'node:http';

export interface DemoAppOptions {
  name: string;
  /** host:port ("0.0.0.0:8080", "[::1]:8080"). */
  listen: string;
  /** Shown in the answer; the lab passes its host name. */
  host: string;
}

export interface DemoApp {
  address: string;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen "${listen}": expected host:port`);
  return { host: m[1] ?? m[2]!, port };
}

export async function startDemoApp(opts: DemoAppOptions): Promise<DemoApp> {
  const { host, port } = parseListen(opts.listen);
  const body = `hello from ${opts.name} on ${opts.host}\n`;
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
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
