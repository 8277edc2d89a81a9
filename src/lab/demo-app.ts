/**
 * The lab's demo application (`trellis demo-app`): answers every request with 200 and
 * `hello from NAME on HOST`. Logs nothing per request; the lab's logs stay about the mesh.
 */
import { createServer, type Server } from 'node:http';
import { listenHttp, type Listening } from '../core/index.js';

export interface DemoAppOptions {
  name: string;
  /** host:port ("0.0.0.0:8080", "[::1]:8080"). */
  listen: string;
  /** Shown in the answer; the lab passes its host name. */
  host: string;
}

export type DemoApp = Listening;

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
  return listenHttp(server, host, port);
}
