/**
 * Load through a mesh listener for end-to-end tests, and the app behind it: an HTTP app that
 * answers with its name (and the size of the body it read), which can die and come back on its
 * port, and a load of alternating GETs and POSTs whose every outcome is recorded.
 */
import {
  Agent as HttpAgent,
  createServer as createHttpServer,
  request as httpRequest,
  type Server,
} from 'node:http';
import type { Socket } from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long the app takes to answer a request for /slow. */
export const SLOW_MS = 1500;

/** An app that answers with its name (and the size of the body it read). */
export class App {
  readonly sockets = new Set<Socket>();
  server: Server | undefined;
  constructor(
    readonly name: string,
    public port = 0,
  ) {}

  async start(): Promise<number> {
    const server = createHttpServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      // /slow answers after SLOW_MS: a request still in flight when something stops.
      const delay = req.url?.startsWith('/slow') ? SLOW_MS : 0;
      req.on('end', () => {
        if (delay === 0) res.end(`${this.name} ${n}`);
        else setTimeout(() => res.end(`${this.name} ${n}`), delay);
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this.port;
  }

  /** As if the process died: the port refuses connections, open ones are reset. */
  async kill(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

export interface Outcome {
  at: number;
  ended: number;
  method: string;
  status: number;
  reason: string;
  error?: string;
}

/** `workers` loops, each one request every `everyMs`, alternating GET and POST. */
export function load(port: number, workers: number, everyMs: number) {
  const outcomes: Outcome[] = [];
  let stop = false;
  const agent = new HttpAgent({ keepAlive: true, maxSockets: workers });
  const one = (method: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const at = Date.now();
      const body = method === 'POST' ? `payload-${at}` : '';
      const r = httpRequest(
        { host: '127.0.0.1', port, path: '/', method, agent, timeout: 15_000 },
        (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () =>
            resolve({
              at,
              ended: Date.now(),
              method,
              status: res.statusCode ?? 0,
              reason: String(res.headers['x-trellis-reason'] ?? ''),
              ...(res.statusCode === 200 && b.endsWith(` ${body.length}`)
                ? {}
                : { error: `body ${b}` }),
            }),
          );
        },
      );
      r.on('timeout', () => r.destroy(new Error('no answer')));
      r.on('error', (e) =>
        resolve({ at, ended: Date.now(), method, status: 0, reason: '', error: e.message }),
      );
      r.end(body || undefined);
    });
  const loops = Array.from({ length: workers }, async (_, w) => {
    let i = w;
    while (!stop) {
      outcomes.push(await one(i++ % 2 ? 'POST' : 'GET'));
      await sleep(everyMs);
    }
  });
  return {
    outcomes,
    async end(): Promise<void> {
      stop = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

export const failed = (o: Outcome): boolean => o.status !== 200 || o.error !== undefined;
