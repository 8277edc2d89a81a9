/**
 * The mesh under continuous load while its certificates change and its servers go away, with
 * real processes: one `trellis server`, and two `trellis agent`s each running the proxies of
 * its own services. web's agent has upstream listeners for "api" (HTTP: service-defaults say
 * Protocol = "http") and "echo" (raw TCP, an echo app); api's agent fronts both apps.
 *
 * The claims, in order, sharing the processes:
 *   1. 30-second leaves are renewed under load: zero failed requests, and connections opened
 *      before a renewal keep working after it
 *   2. a root rotation under load: zero failed requests, and every proxy moves to a leaf of
 *      the new root
 *   3. every server killed under load: traffic keeps flowing; both agents restarted while the
 *      servers are still down serve their saved plans; the server restarted: still flowing, and
 *      the agents follow it again
 *
 * Every request's outcome is counted; any status other than 200, any wrong body and any
 * connection error is a failure, listed with its time.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import {
  Agent as HttpAgent,
  createServer as createHttpServer,
  request as httpRequest,
  type Server as HttpServer,
} from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import {
  eventually,
  startTrellis,
  tempDirs,
  type TrellisProcess,
  agentArgs as agentCommand,
} from '../helpers/trellis-process.js';
import { freePort, tcpRoundTrip } from '../helpers/net.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Figures for whoever runs the file by hand: TRELLIS_E2E_VERBOSE=1. */
function note(text: string): void {
  if (process.env.TRELLIS_E2E_VERBOSE) console.log(`      [resilience] ${text}`);
}

interface Reply {
  status: number;
  body: string;
  error?: string;
  socket?: Socket;
}

/** One GET through a listener; `agent: false` opens a new connection for it. */
function get(port: number, path: string, agent: HttpAgent | false = false): Promise<Reply> {
  return new Promise((resolve) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: r.socket! }));
      res.on('error', (e) => resolve({ status: res.statusCode ?? 0, body, error: e.message }));
    });
    r.on('timeout', () => r.destroy(new Error('no answer within 10s')));
    r.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
    r.end();
  });
}

interface Failure {
  at: number;
  worker: string;
  path: string;
  status: number;
  error: string;
}

/**
 * Continuous HTTP load: `fresh` workers open a new connection per request, `kept` workers each
 * reuse one kept-alive connection (a new one only if it is closed).
 */
class Load {
  readonly t0 = Date.now();
  sent = 0;
  ok = 0;
  readonly failures: Failure[] = [];
  /** Kept-alive connections: when each first and last carried a successful request. */
  readonly kept = new Map<Socket, { worker: string; first: number; last: number; n: number }>();
  readonly #agents: HttpAgent[] = [];
  readonly #workers: Promise<void>[] = [];
  #running = true;

  constructor(
    readonly port: number,
    opts: { fresh: number; kept: number } = { fresh: 2, kept: 2 },
  ) {
    for (let i = 0; i < opts.fresh; i++) this.#workers.push(this.#run(`fresh-${i}`, false));
    for (let i = 0; i < opts.kept; i++) {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      this.#agents.push(agent);
      this.#workers.push(this.#run(`kept-${i}`, agent));
    }
  }

  async #run(worker: string, agent: HttpAgent | false): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const path = `/load/${worker}/${n}`;
      const at = Date.now();
      const r = await get(this.port, path, agent);
      this.sent++;
      if (r.status === 200 && r.body === `ok ${path}`) {
        this.ok++;
        if (agent && r.socket) {
          const k = this.kept.get(r.socket);
          if (k) {
            k.last = Date.now();
            k.n++;
          } else this.kept.set(r.socket, { worker, first: Date.now(), last: Date.now(), n: 1 });
        }
      } else {
        this.failures.push({
          at,
          worker,
          path,
          status: r.status,
          error: r.error ?? `unexpected body ${JSON.stringify(r.body.slice(0, 200))}`,
        });
      }
      await sleep(5);
    }
  }

  async stop(): Promise<this> {
    this.#running = false;
    await Promise.all(this.#workers);
    for (const a of this.#agents) a.destroy();
    return this;
  }

  summary(): string {
    const secs = ((Date.now() - this.t0) / 1000).toFixed(1);
    return `${this.sent} requests in ${secs}s, ${this.ok} ok, ${this.failures.length} failed, ${this.kept.size} kept-alive connections`;
  }

  /** Asserts at least `min` requests were made and none failed, listing every failure. */
  expectNoFailures(min: number): void {
    const list = this.failures
      .slice(0, 30)
      .map(
        (f) =>
          `  +${((f.at - this.t0) / 1000).toFixed(3)}s (${new Date(f.at).toISOString()}) ${f.worker} ${f.path}: status ${f.status}: ${f.error}`,
      )
      .join('\n');
    expect(this.failures, `${this.summary()}:\n${list}`).to.have.length(0);
    expect(this.sent, this.summary()).to.be.at.least(min);
  }
}

/**
 * A raw TCP connection through web's upstream for echo, held open: pinged every `everyMs`, each
 * ping must come back on the same connection.
 */
class EchoSession {
  readonly socket: Socket;
  closed = false;
  pings = 0;
  readonly failures: string[] = [];
  #buf = '';
  #n = 0;
  #loop: Promise<void> | undefined;
  #running = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.#buf += d));
    socket.on('error', (e) =>
      this.failures.push(`${new Date().toISOString()} error: ${e.message}`),
    );
    socket.on('close', () => (this.closed = true));
  }

  static async open(port: number): Promise<EchoSession> {
    const s = connect({ host: '127.0.0.1', port });
    await new Promise<void>((res, rej) => {
      s.once('connect', () => res());
      s.once('error', rej);
    });
    const session = new EchoSession(s);
    expect(await session.ping(), session.failures.join('\n')).to.equal(true);
    return session;
  }

  /** Sends one line and waits (up to 5 s) for it to come back. */
  async ping(): Promise<boolean> {
    const line = `ping ${++this.#n} ${Date.now()}\n`;
    this.pings++;
    if (this.closed) {
      this.failures.push(`${new Date().toISOString()} ${line.trim()}: the connection is closed`);
      return false;
    }
    this.socket.write(line);
    const until = Date.now() + 5000;
    while (!this.#buf.includes(line)) {
      if (this.closed || Date.now() > until) {
        this.failures.push(
          `${new Date().toISOString()} ${line.trim()}: ${this.closed ? 'closed' : 'no echo within 5s'}`,
        );
        return false;
      }
      await sleep(10);
    }
    this.#buf = this.#buf.slice(this.#buf.indexOf(line) + line.length);
    return true;
  }

  startPinging(everyMs = 500): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        await this.ping();
        await sleep(everyMs);
      }
    })();
  }

  async stopPinging(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  close(): void {
    this.socket.destroy();
  }

  expectAlive(): void {
    expect(this.failures, this.failures.join('\n')).to.deep.equal([]);
    expect(this.closed, 'the echo connection was closed').to.equal(false);
  }
}

/** The certificate a proxy's public (mTLS) listener presents to a new connection. */
function presentedCert(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.setTimeout(5000, () => s.destroy(new Error('TLS handshake timeout')));
    s.once('secureConnect', () => {
      const c = s.getPeerX509Certificate();
      s.destroy();
      if (c) resolve(c);
      else reject(new Error('no certificate presented'));
    });
    // The proxy refuses us after the handshake (no client certificate): not our concern here.
    s.on('error', (e) => reject(e));
  });
}

const firstPem = (pem: string): string => {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('no PEM certificate');
  return m[0];
};

interface Leaf {
  cert: X509Certificate;
  validAfter: number;
  validBefore: number;
}

/** The agent's current leaf for `service` (GET /v1/agent/connect/ca/leaf/<service>). */
async function agentLeaf(agent: TrellisProcess, service: string): Promise<Leaf> {
  const r = await request(`http://${agent.address}/v1/agent/connect/ca/leaf/${service}`);
  const text = await r.body.text();
  expect(r.statusCode, text).to.equal(200);
  const leaf = JSON.parse(text) as { CertPEM: string; ValidAfter: string; ValidBefore: string };
  return {
    cert: new X509Certificate(firstPem(leaf.CertPEM)),
    validAfter: Date.parse(leaf.ValidAfter),
    validBefore: Date.parse(leaf.ValidBefore),
  };
}

interface Roots {
  ActiveRootID: string;
  Roots: { ID: string; RootCert: string; Active: boolean }[];
}

async function agentRoots(agent: TrellisProcess): Promise<Roots> {
  const r = await request(`http://${agent.address}/v1/agent/connect/ca/roots`);
  const text = await r.body.text();
  expect(r.statusCode, text).to.equal(200);
  return JSON.parse(text) as Roots;
}

async function put(url: string, body?: unknown): Promise<string> {
  const r = await request(url, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.body.text();
  expect(r.statusCode, `PUT ${url}: ${text}`).to.equal(200);
  return text;
}

describe('mesh resilience: certificates change and servers vanish under load', function () {
  this.timeout(240_000);
  const tmp = tempDirs();
  let server: TrellisProcess | undefined;
  let serverArgs: string[] = [];
  let base = '';
  let apiAgent: TrellisProcess | undefined;
  let webAgent: TrellisProcess | undefined;
  const agentArgs: { api: string[]; web: string[] } = { api: [], web: [] };
  const dataDirs: string[] = [];
  let httpApp: HttpServer;
  let echoApp: Server;
  const port = { apiSidecar: 0, echoSidecar: 0, webSidecar: 0, upApi: 0, upEcho: 0 };
  /** Each proxy's public listener: what it presents is the leaf in its plan. */
  const proxies = (): [string, number][] => [
    ['api', port.apiSidecar],
    ['echo', port.echoSidecar],
    ['web', port.webSidecar],
  ];
  const agentOf = (service: string): TrellisProcess => (service === 'web' ? webAgent! : apiAgent!);

  before(async () => {
    httpApp = createHttpServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`ok ${req.url}`);
    });
    await new Promise<void>((r) => httpApp.listen(0, '127.0.0.1', () => r()));
    echoApp = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echoApp.listen(0, '127.0.0.1', () => r()));
    const appPort = (s: Server): number => (s.address() as { port: number }).port;

    // A fixed port, so the server can come back where the agents look for it.
    serverArgs = [
      'server',
      '--data-dir',
      tmp.make('res-srv'),
      '--bind',
      `127.0.0.1:${await freePort()}`,
      '--https-bind',
      'off',
      '--node',
      'srv',
      '--acl-default-policy',
      'allow',
    ];
    server = await startTrellis(serverArgs);
    base = `http://${server.address}`;

    // 30-second leaves (renewed at 60% of their life, ~18 s), before any agent asks for one.
    await put(`${base}/v1/connect/ca/configuration`, {
      Provider: 'consul',
      Config: { LeafCertTTL: '30s' },
    });
    const cfg = await request(`${base}/v1/connect/ca/configuration`);
    const cfgBody = (await cfg.body.json()) as { Config: { LeafCertTTL: string } };
    expect(cfgBody.Config.LeafCertTTL).to.equal('30s');
    await put(`${base}/v1/config`, { Kind: 'service-defaults', Name: 'api', Protocol: 'http' });
    await put(`${base}/v1/config`, { Kind: 'service-defaults', Name: 'echo', Protocol: 'tcp' });

    for (const k of Object.keys(port) as (keyof typeof port)[]) port[k] = await freePort();
    const sidecar = (name: string, app: number, sidecarPort: number, proxy = ''): string =>
      `service {\n  name = "${name}"\n  port = ${app}\n  connect {\n    sidecar_service {\n      address = "127.0.0.1"\n      port    = ${sidecarPort}\n${proxy}    }\n  }\n}\n`;
    const apiConf = tmp.make('res-api-conf');
    writeFileSync(join(apiConf, 'api.hcl'), sidecar('api', appPort(httpApp), port.apiSidecar));
    writeFileSync(join(apiConf, 'echo.hcl'), sidecar('echo', appPort(echoApp), port.echoSidecar));
    const webConf = tmp.make('res-web-conf');
    writeFileSync(
      join(webConf, 'web.hcl'),
      sidecar(
        'web',
        1,
        port.webSidecar,
        `      proxy {\n        upstreams = [\n          { destination_name = "api", local_bind_port = ${port.upApi} },\n          { destination_name = "echo", local_bind_port = ${port.upEcho} },\n        ]\n      }\n`,
      ),
    );
    const args = (node: string, conf: string): string[] => {
      const data = tmp.make(`res-${node}`);
      dataDirs.push(data);
      return agentCommand(server!.address, node, data, conf);
    };
    agentArgs.api = args('h-api', apiConf);
    agentArgs.web = args('h-web', webConf);
    apiAgent = await startTrellis(agentArgs.api);
    webAgent = await startTrellis(agentArgs.web);

    await eventually(async () => (await get(port.upApi, '/ready')).status === 200, 30_000, 200);
    await eventually(async () => (await tcpRoundTrip(port.upEcho, 'up')) === 'up', 30_000, 200);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [name, p] of [
      ['server', server],
      ['api agent', apiAgent],
      ['web agent', webAgent],
    ] as const) {
      if (!p) continue;
      console.log(`---- ${name} output (tail) ----\n${p.output().slice(-6000)}`);
      if (name === 'server') continue;
      // What the proxies counted as refused or failed (response flags other than "-").
      try {
        const r = await request(`http://${p.address}/v1/agent/metrics?format=prometheus`);
        const text = await r.body.text();
        const flagged = text
          .split('\n')
          .filter((l) => /_total\{.*response_flags="[^-"]/.test(l))
          .join('\n');
        console.log(`---- ${name} metrics with response flags ----\n${flagged}`);
      } catch (err) {
        console.log(`---- ${name} metrics unavailable: ${String(err)}`);
      }
    }
  });

  after(async () => {
    await webAgent?.stop();
    await apiAgent?.stop();
    await server?.stop();
    httpApp?.closeAllConnections();
    httpApp?.close();
    echoApp?.close();
    tmp.removeAll();
  });

  it('renews 30-second leaves under continuous load: zero failed requests, open connections keep working', async () => {
    // Every proxy presents its agent's current leaf, a 30-second one.
    const first = new Map<string, string>();
    for (const [service, p] of proxies()) {
      const presented = await presentedCert(p);
      const leaf = await agentLeaf(agentOf(service), service);
      expect(presented.serialNumber, service).to.equal(leaf.cert.serialNumber);
      expect(leaf.validBefore - leaf.validAfter, service).to.equal(30_000);
      first.set(service, presented.serialNumber);
    }
    const echo = await EchoSession.open(port.upEcho);
    echo.startPinging(500);
    const load = new Load(port.upApi);

    // Watch new TLS connections to each proxy until each presents a new certificate.
    const renewedAt = new Map<string, number>();
    try {
      await eventually(
        async () => {
          for (const [service, p] of proxies()) {
            if (renewedAt.has(service)) continue;
            if ((await presentedCert(p)).serialNumber !== first.get(service))
              renewedAt.set(service, Date.now());
          }
          return renewedAt.size === proxies().length;
        },
        90_000,
        250,
      );
      await sleep(2000);
    } finally {
      await load.stop();
      await echo.stopPinging();
    }
    const t = (ms: number): string => `+${((ms - load.t0) / 1000).toFixed(1)}s`;
    note(
      `renewals: ${[...renewedAt].map(([s, at]) => `${s} ${t(at)}`).join(', ')}; ${load.summary()}; ${echo.pings} echo pings`,
    );

    // The same connection still echoes after the renewals of both proxies it passes through.
    expect(await echo.ping()).to.equal(true);
    echo.expectAlive();
    echo.close();
    load.expectNoFailures(100);
    // At least one kept-alive connection carried requests before the first renewal and after
    // the last.
    const firstRenewal = Math.min(...renewedAt.values());
    const lastRenewal = Math.max(...renewedAt.values());
    const spanning = [...load.kept.values()].filter(
      (k) => k.first < firstRenewal && k.last > lastRenewal,
    );
    expect(spanning, `kept-alive connections: ${JSON.stringify([...load.kept.values()])}`).to.not.be
      .empty;
    // The agents hand out the renewed leaves, and they are what the proxies present.
    for (const [service, p] of proxies()) {
      const leaf = await agentLeaf(agentOf(service), service);
      expect(leaf.cert.serialNumber, service).to.not.equal(first.get(service));
      expect((await presentedCert(p)).serialNumber, service).to.equal(leaf.cert.serialNumber);
    }
  });

  it('rotates the root under continuous load: zero failed requests, both agents move to the new root', async () => {
    // Leaves issued from here on live ten minutes, so those the rotation issues outlast the
    // server outage of the next test (the rotation itself does not depend on it).
    await put(`${base}/v1/connect/ca/configuration`, {
      Provider: 'consul',
      Config: { LeafCertTTL: '10m' },
    });
    const oldRoot = (await agentRoots(webAgent!)).ActiveRootID;
    expect((await agentRoots(apiAgent!)).ActiveRootID).to.equal(oldRoot);
    const echo = await EchoSession.open(port.upEcho);
    echo.startPinging(250);
    const load = new Load(port.upApi);
    let rotatedAt = 0;
    let newRoot = '';
    let movedAt = 0;
    try {
      await sleep(1000);
      rotatedAt = Date.now();
      newRoot = (
        JSON.parse(await put(`${base}/v1/internal/trellis/ca/rotate`)) as { ActiveRootID: string }
      ).ActiveRootID;
      expect(newRoot).to.be.a('string').and.not.equal(oldRoot);
      // Both agents know the new active root and every proxy presents a leaf it signed.
      await eventually(
        async () => {
          for (const a of [apiAgent!, webAgent!]) {
            if ((await agentRoots(a)).ActiveRootID !== newRoot) return false;
          }
          const root = await rootCert(webAgent!, newRoot);
          for (const [, p] of proxies()) {
            if (!(await presentedCert(p)).verify(root.publicKey)) return false;
          }
          return true;
        },
        30_000,
        100,
      );
      movedAt = Date.now();
      await sleep(3000);
    } finally {
      await load.stop();
      await echo.stopPinging();
    }
    note(
      `rotation at +${((rotatedAt - load.t0) / 1000).toFixed(1)}s, every proxy on the new root ${((movedAt - rotatedAt) / 1000).toFixed(1)}s later; ${load.summary()}; ${echo.pings} echo pings`,
    );
    expect(await echo.ping()).to.equal(true);
    echo.expectAlive();
    echo.close();
    load.expectNoFailures(100);
    // The agents' leaves chain to the new root (signed by it, issued by it) and are the ones
    // their proxies present.
    for (const a of [apiAgent!, webAgent!]) {
      const roots = await agentRoots(a);
      expect(roots.ActiveRootID).to.equal(newRoot);
      expect(roots.Roots.map((r) => r.ID)).to.include.members([oldRoot, newRoot]);
    }
    const root = await rootCert(webAgent!, newRoot);
    for (const [service, p] of proxies()) {
      const leaf = await agentLeaf(agentOf(service), service);
      expect(leaf.cert.verify(root.publicKey), service).to.equal(true);
      expect(leaf.cert.checkIssued(root), service).to.equal(true);
      expect((await presentedCert(p)).serialNumber, service).to.equal(leaf.cert.serialNumber);
    }
  });

  it('keeps traffic flowing with every server killed; agents restarted without servers serve their saved plans', async () => {
    // Precondition: the leaves outlive everything below (see the rotation test).
    for (const [service] of proxies()) {
      const leaf = await agentLeaf(agentOf(service), service);
      expect(leaf.validBefore - Date.now(), service).to.be.above(3 * 60_000);
    }
    const dead = await runWhile(async () => {
      await sleep(1000);
      await server!.kill9();
      server = undefined;
      await sleep(5000);
      // New connections too, not only the ones opened before.
      expect(await tcpRoundTrip(port.upEcho, 'no server')).to.equal('no server');
      expect((await get(port.upApi, '/no-server')).status).to.equal(200);
    });
    note(`server killed: ${dead.load.summary()}; ${dead.echo.pings} echo pings`);
    dead.echo.expectAlive();
    dead.echo.close();
    dead.load.expectNoFailures(100);

    // Both agents restart while the servers are still down: only the saved plans can serve.
    for (const dir of dataDirs)
      expect(readdirSync(join(dir, 'proxy-plans')).filter((f) => f.endsWith('.json'))).to.not.be
        .empty;
    await webAgent!.stop();
    await apiAgent!.stop();
    webAgent = apiAgent = undefined;
    const restartedAt = Date.now();
    apiAgent = await startTrellis(agentArgs.api);
    webAgent = await startTrellis(agentArgs.web);
    await eventually(
      async () => (await get(port.upApi, '/after-restart')).status === 200,
      20_000,
      100,
    );
    const servingAfter = Date.now() - restartedAt;
    expect(await tcpRoundTrip(port.upEcho, 'saved plan')).to.equal('saved plan');
    const restarted = await runWhile(() => sleep(3000));
    note(
      `agents restarted without servers: serving ${(servingAfter / 1000).toFixed(1)}s after the restart began; ${restarted.load.summary()}`,
    );
    restarted.echo.expectAlive();
    restarted.echo.close();
    restarted.load.expectNoFailures(50);

    // The server comes back on the same address: traffic never stops, and the agents follow it
    // again (a new L7 intention reaches api's proxy).
    let back = 0;
    let watching: Promise<string[]> | undefined;
    let stopWatching = false;
    const again = await runWhile(async () => {
      watching = watchSidecarChecks(
        [
          ['server', `${base}/v1/health/state/any`],
          ['api-agent', `http://${apiAgent!.address}/v1/agent/checks`],
          ['web-agent', `http://${webAgent!.address}/v1/agent/checks`],
        ],
        () => !stopWatching,
      );
      await sleep(500);
      server = await startTrellis(serverArgs);
      back = Date.now();
      await put(`${base}/v1/connect/intentions/exact?source=web&destination=api`, {
        Permissions: [{ Action: 'deny', HTTP: { PathPrefix: '/blocked' } }],
      });
      await eventually(
        async () => (await get(port.upApi, '/blocked/x')).status === 403,
        60_000,
        250,
      );
      await sleep(1000);
    });
    note(
      `server restarted: intention followed ${((Date.now() - back) / 1000).toFixed(1)}s after; ${again.load.summary()}`,
    );
    stopWatching = true;
    const seen = (await watching) ?? [];
    note(`sidecar checks seen after the server restart: ${seen.join('; ')}`);
    again.echo.expectAlive();
    again.echo.close();
    again.load.expectNoFailures(50);
    // The agents served their saved plans all along: their sidecars never turned critical
    // while the inputs of fresh plans came back one by one.
    expect(
      seen.filter((x) => / critical /.test(x)),
      seen.join('\n'),
    ).to.deep.equal([]);
    // And the server sees both sidecars passing again.
    for (const svc of ['api', 'echo'])
      await eventually(
        async () => {
          const r = await request(`${base}/v1/health/connect/${svc}?passing=1`);
          return ((await r.body.json()) as unknown[]).length === 1;
        },
        30_000,
        250,
      );

    /** Runs `fn` under HTTP load and with an open echo connection pinged every 250 ms. */
    async function runWhile(fn: () => Promise<void>): Promise<{ load: Load; echo: EchoSession }> {
      const echo = await EchoSession.open(port.upEcho);
      echo.startPinging(250);
      const load = new Load(port.upApi);
      try {
        await fn();
      } finally {
        await load.stop();
        await echo.stopPinging();
      }
      expect(await echo.ping()).to.equal(true);
      return { load, echo };
    }
  });
});

/**
 * Polls every `sources` URL (a server's /v1/health/state/any, an agent's /v1/agent/checks) for
 * the sidecars' "Connect Sidecar Listening" checks while `running()`, and returns every change
 * seen ("+<s> <source> <sidecar> <status> (<output>)"). Sources that do not answer yet (a
 * server starting) are skipped.
 */
async function watchSidecarChecks(
  sources: [string, string][],
  running: () => boolean,
): Promise<string[]> {
  const t0 = Date.now();
  const last = new Map<string, string>();
  const seen: string[] = [];
  while (running()) {
    for (const [label, url] of sources) {
      try {
        const r = await request(url);
        if (r.statusCode !== 200) {
          await r.body.text();
          continue;
        }
        const body = (await r.body.json()) as object;
        const checks = (Array.isArray(body) ? body : Object.values(body)) as {
          Name: string;
          ServiceID: string;
          Status: string;
          Output: string;
        }[];
        for (const c of checks.filter((x) => x.Name === 'Connect Sidecar Listening')) {
          const key = `${label} ${c.ServiceID}`;
          const now = `${c.Status} (${c.Output})`;
          if (last.get(key) !== now)
            seen.push(`+${((Date.now() - t0) / 1000).toFixed(2)}s ${key} ${now}`);
          last.set(key, now);
        }
      } catch {
        // Not answering yet: nothing to see.
      }
    }
    await sleep(50);
  }
  return seen;
}

async function rootCert(agent: TrellisProcess, id: string): Promise<X509Certificate> {
  const r = (await agentRoots(agent)).Roots.find((x) => x.ID === id);
  if (!r) throw new Error(`root ${id} not known to the agent`);
  return new X509Certificate(firstPem(r.RootCert));
}
