/**
 * A tiny real HTTP server imitating the few Consul endpoints a test needs, on 127.0.0.1
 * port 0. Tests give it a handler per "METHOD /path" and read back what it received.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeResponse {
  status?: number;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as text/plain (error messages). */
  text?: string;
  /** X-Consul-Index. */
  index?: number;
  /** Never answer (for timeouts). */
  hang?: boolean;
  /** Destroy the socket without answering (for resets). */
  reset?: boolean;
}

export type FakeHandler = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;

export interface FakeApi {
  /** "127.0.0.1:port". */
  address: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

/** Routes keyed "GET /v1/catalog/services"; unknown routes answer 404 text. */
export function routes(table: Record<string, FakeHandler>): FakeHandler {
  return (req) => {
    const handler = table[`${req.method} ${req.path}`];
    return handler ? handler(req) : { status: 404, text: `no route ${req.method} ${req.path}` };
  };
}

export async function startFakeApi(handler: FakeHandler): Promise<FakeApi> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const fake: FakeRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(fake);
      void Promise.resolve(handler(fake)).then((out) => {
        if (out.hang) return;
        if (out.reset) {
          req.socket.destroy();
          return;
        }
        const headers: Record<string, string> = {};
        if (out.index !== undefined) headers['X-Consul-Index'] = String(out.index);
        let body = '';
        if (out.json !== undefined) {
          headers['Content-Type'] = 'application/json';
          body = JSON.stringify(out.json);
        } else if (out.text !== undefined) {
          headers['Content-Type'] = 'text/plain; charset=utf-8';
          body = out.text;
        }
        res.writeHead(out.status ?? 200, headers);
        res.end(body);
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An address where nothing listens: a port that was just bound and released. */
export async function refusedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}
