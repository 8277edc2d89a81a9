/**
 * Proxy workers (real processes, real sockets, real mutual TLS): two worker processes carry a
 * web -> api pair on shared listening sockets; a plan counts as applied only once every worker
 * applied it; metrics are merged across workers; a worker that dies is replaced and given the
 * plans while the other worker's open connections keep working.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { systemClock } from '../../../src/core/index.js';
import { mergedMetrics, ProxyWorkers, type ProxyPlan } from '../../../src/proxy/index.js';
import { spiffeUri, testCa, type TestLeaf } from '../../helpers/mesh-ca.js';
import { freePort } from '../../helpers/net.js';

const quiet = { info() {}, warn() {} };

/** A keep-alive client connection that sends one GET at a time and reads the status. */
class RawClient {
  readonly sock: Socket;
  closed = false;
  #buf = '';
  #waiting: ((status: number) => void) | undefined;

  constructor(port: number) {
    this.sock = connect(port, '127.0.0.1');
    this.sock.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const cl = /\r\ncontent-length: *(\d+)/i.exec(this.#buf.slice(0, end));
      if (this.#buf.length < end + 4 + Number(cl?.[1] ?? 0)) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.#buf)?.[1] ?? 0);
      this.#buf = '';
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(status);
    });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => {
      this.closed = true;
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(0);
    });
  }

  /** The status of GET `path`, or 0 when the connection closed first. */
  get(path: string): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.sock.write(`GET ${path} HTTP/1.1\r\nHost: api\r\n\r\n`);
    });
  }
}

/** Requests counted by each worker's own registry (outbound side). */
async function perWorker(workers: ProxyWorkers): Promise<number[]> {
  const all = await workers.metrics();
  return all.map((json) => {
    const m = json.find((x) => x.name === 'trellis_http_requests_total');
    return (m?.values ?? [])
      .filter((v) => v.labels.direction === 'outbound')
      .reduce((n, v) => n + v.value, 0);
  });
}

const until = async (what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('proxy workers: two processes on shared listeners (real sockets)', function () {
  this.timeout(60_000);
  const mesh = testCa();
  const certs: Record<'web' | 'api', TestLeaf> = { web: mesh.leaf('web'), api: mesh.leaf('api') };
  let app: Server;
  let workers: ProxyWorkers;
  let upstreamPort = 0;
  let apiPlan: ProxyPlan;
  let webPlan: ProxyPlan;
  const clients: RawClient[] = [];

  const plan = (
    service: 'web' | 'api',
    version: number,
    fields: Partial<ProxyPlan>,
  ): ProxyPlan => ({
    version,
    service,
    identity: spiffeUri(service),
    tls: { ...certs[service], roots: [mesh.rootPem], notAfter: Date.now() + 3_600_000 },
    intentions: [{ ID: 'web => api', SourceName: 'web', DestinationName: 'api', Action: 'allow' }],
    defaultAllow: false,
    inbound: {
      bindAddress: '127.0.0.1',
      bindPort: 0,
      localApp: { address: '127.0.0.1', port: 1 },
      protocol: 'http',
    },
    upstreams: [],
    ...fields,
  });

  before(async () => {
    app = createServer((req, res) => res.end(`ok ${req.url}`));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const appPort = (app.address() as { port: number }).port;
    const apiPort = await freePort();
    upstreamPort = await freePort();
    apiPlan = plan('api', 1, {
      inbound: {
        bindAddress: '127.0.0.1',
        bindPort: apiPort,
        localApp: { address: '127.0.0.1', port: appPort },
        protocol: 'http',
      },
    });
    webPlan = plan('web', 1, {
      inbound: {
        bindAddress: '127.0.0.1',
        bindPort: await freePort(),
        localApp: { address: '127.0.0.1', port: 1 },
        protocol: 'http',
      },
      upstreams: [
        {
          destination: 'api',
          bindAddress: '127.0.0.1',
          bindPort: upstreamPort,
          identity: spiffeUri('api'),
          endpoints: [{ address: '127.0.0.1', port: apiPort, node: 'n1' }],
          protocol: 'http',
          balancer: 'round_robin',
        },
      ],
    });
    workers = new ProxyWorkers({ count: 2, log: quiet, logLevel: 'warn', clock: systemClock });
    await workers.handle('api').setPlan(apiPlan);
    await workers.handle('web').setPlan(webPlan);
  });

  after(async () => {
    for (const c of clients) c.sock.destroy();
    await workers?.close();
    app?.close();
  });

  it('forks the workers with the first plan and serves through both of them', async () => {
    expect(workers.pids()).to.have.length(2);
    // Connections go to whichever worker accepts first: open them until both have served.
    await until('both workers to serve a request', async () => {
      const c = new RawClient(upstreamPort);
      clients.push(c);
      expect(await c.get(`/n/${clients.length}`)).to.equal(200);
      return (await perWorker(workers)).every((n) => n > 0);
    });
  });

  it('merges the workers metrics into one exposition', async () => {
    const counts = await perWorker(workers);
    const merged = await mergedMetrics([], workers);
    const text = await merged.metrics();
    const total =
      /trellis_http_requests_total\{direction="outbound",source_service="web",destination_service="api",response_code="200",response_flags="-"\} (\d+)/.exec(
        text,
      );
    expect(Number(total?.[1])).to.equal(counts.reduce((a, b) => a + b, 0));
  });

  it('applies a plan in every worker before setPlan resolves', async () => {
    const deny = plan('api', 2, {
      inbound: apiPlan.inbound,
      intentions: [{ ID: 'web => api', SourceName: 'web', DestinationName: 'api', Action: 'deny' }],
    });
    await workers.handle('api').setPlan(deny);
    // Fresh connections land on either worker: every one is refused at once.
    const fresh = Array.from({ length: 16 }, () => new RawClient(upstreamPort));
    const statuses = await Promise.all(fresh.map((c, i) => c.get(`/d/${i}`)));
    for (const c of fresh) c.sock.destroy();
    expect(statuses.every((s) => s === 403)).to.equal(true, `statuses: ${statuses.join(',')}`);
    const allow = plan('api', 3, { inbound: apiPlan.inbound });
    await workers.handle('api').setPlan(allow);
    const again = new RawClient(upstreamPort);
    expect(await again.get('/again')).to.equal(200);
    again.sock.destroy();
  });

  it("replaces a worker that dies, without touching the other worker's connections", async () => {
    const [victim, survivor] = workers.pids();
    process.kill(victim!, 'SIGKILL');
    // The killed worker's connections close; the others keep answering on the same socket.
    await until('the killed worker to be gone', async () => !workers.pids().includes(victim!));
    const after = await Promise.all(clients.map((c, i) => c.get(`/k/${i}`)));
    const kept = after.filter((s) => s === 200).length;
    const cut = clients.filter((c) => c.closed).length;
    expect(kept + cut).to.equal(clients.length);
    expect(kept, 'connections of the surviving worker still served').to.be.greaterThan(0);
    expect(cut, 'connections of the killed worker closed').to.be.greaterThan(0);
    // A replacement starts (after a pause: the victim was young) and gets both plans.
    await until(
      'a replacement worker',
      async () => workers.pids().length === 2 && !workers.pids().includes(victim!),
      20_000,
    );
    expect(workers.pids()).to.include(survivor!);
    await until('the replacement to serve', async () => {
      const c = new RawClient(upstreamPort);
      const s = await c.get('/new');
      c.sock.destroy();
      expect(s).to.equal(200);
      return (await perWorker(workers)).every((n) => n > 0);
    });
  });
});
