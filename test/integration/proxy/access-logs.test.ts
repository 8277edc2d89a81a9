/**
 * The access log as a plan sets it (Consul's proxy-defaults `AccessLogs`): real proxies, real
 * mutual TLS, real files. A proxy writes one line per request only while its plan enables it,
 * to the plan's target; listener logs (requests refused before they were handled) follow
 * `DisableListenerLogs`; a file that cannot be written is reported once and traffic goes on.
 */
import { expect } from 'chai';
import { mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { systemClock } from '../../../src/core/index.js';
import {
  ServiceProxy,
  type AccessLogPlan,
  type AccessLogTarget,
  type ProxyPlan,
} from '../../../src/proxy/index.js';
import { accessLogFor } from '../../../src/telemetry/access-log.js';
import { spiffeUri, testCa } from '../../helpers/mesh-ca.js';

const HOST = '127.0.0.1';
const quiet = { info() {}, warn() {} };
const mesh = testCa();

function plan(service: string, appPort: number, accessLogs: AccessLogPlan): ProxyPlan {
  return {
    version: 1,
    service,
    identity: spiffeUri(service),
    tls: { ...mesh.leaf(service), roots: [mesh.rootPem], notAfter: Date.now() + 3600_000 },
    intentions: [],
    defaultAllow: true,
    inbound: {
      bindAddress: HOST,
      bindPort: 0,
      localApp: { address: HOST, port: appPort },
      protocol: 'http',
    },
    upstreams: [],
    accessLogs,
  };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: HOST, port, path, headers: { host: 'api' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
}

/** Sends a head the proxy cannot parse on the public mTLS listener; resolves on the answer. */
function garbage(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const leaf = mesh.leaf('web');
    const s = tlsConnect({
      host: HOST,
      port,
      cert: leaf.certChain,
      key: leaf.key,
      ca: [mesh.rootPem],
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.once('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: api\r\nBad Header\r\n\r\n'));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The JSON lines of `file` once it has at least `n` (the logger flushes every 500 ms). */
async function linesOf(file: string, n: number): Promise<Record<string, unknown>[]> {
  for (let waited = 0; waited < 5_000; waited += 50) {
    const lines = existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
    if (lines.length >= n) return lines;
    await sleep(50);
  }
  throw new Error(`${file}: fewer than ${n} lines after 5 s`);
}

describe('proxy: access logs as the plan sets them (real files)', function () {
  this.timeout(30_000);
  let dir: string;
  let app: Server;
  let appPort = 0;
  const errors: string[] = [];
  const to = (t: AccessLogTarget): ReturnType<typeof accessLogFor> =>
    accessLogFor(t, (err, path) => errors.push(`${path}: ${err.message}`));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-access-logs-'));
    app = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    appPort = (app.address() as { port: number }).port;
  });

  after(() => {
    app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function pair(
    api: AccessLogPlan,
    web: AccessLogPlan,
  ): Promise<{ port: number; inbound: number; apiProxy: ServiceProxy; stop(): Promise<void> }> {
    const apiProxy = new ServiceProxy({ clock: systemClock, log: quiet, accessLogTo: to });
    await apiProxy.setPlan(plan('api', appPort, api));
    const webProxy = new ServiceProxy({ clock: systemClock, log: quiet, accessLogTo: to });
    await webProxy.setPlan({
      ...plan('web', 1, web),
      upstreams: [
        {
          destination: 'api',
          bindAddress: HOST,
          bindPort: 0,
          identity: spiffeUri('api'),
          endpoints: [{ address: HOST, port: apiProxy.inboundPort()!, node: 'n1' }],
          protocol: 'http',
          balancer: 'round_robin',
        },
      ],
    });
    return {
      port: webProxy.upstreamPort('api')!,
      inbound: apiProxy.inboundPort()!,
      apiProxy,
      stop: async () => {
        await webProxy.stop();
        await apiProxy.stop();
      },
    };
  }

  it('writes a line per request only where the plan enables it, to its file', async () => {
    const apiLog = join(dir, 'nested', 'api.log');
    const webLog = join(dir, 'web.log');
    const p = await pair(
      { enabled: true, listenerLogs: true, target: { type: 'file', path: apiLog } },
      { enabled: false, listenerLogs: true, target: { type: 'file', path: webLog } },
    );
    try {
      for (let i = 0; i < 3; i++) expect(await get(p.port, `/r/${i}`)).to.equal(200);
      const lines = await linesOf(apiLog, 3);
      expect(lines.map((l) => l.path)).to.deep.equal(['/r/0', '/r/1', '/r/2']);
      expect(lines[0]).to.include({
        component: 'access',
        direction: 'inbound',
        source_service: 'web',
        destination_service: 'api',
        response_code: 200,
        msg: 'request',
      });
      await sleep(700);
      expect(existsSync(webLog), 'the disabled proxy wrote nothing').to.equal(false);
    } finally {
      await p.stop();
    }
  });

  it('leaves out refused requests when listener logs are off, and stops when a plan disables it', async () => {
    const file = join(dir, 'listener.log');
    const target = { type: 'file' as const, path: file };
    const off = { enabled: false, listenerLogs: true, target };
    const p = await pair({ enabled: true, listenerLogs: false, target }, off);
    try {
      expect(await garbage(p.inbound)).to.match(/^HTTP\/1\.1 400/);
      expect(await get(p.port, '/counted')).to.equal(200);
      expect((await linesOf(file, 1)).map((l) => l.path)).to.deep.equal(['/counted']);
      // Listener logs on: the refused request is a line too.
      await p.apiProxy.setPlan({
        ...plan('api', appPort, { enabled: true, listenerLogs: true, target }),
        version: 2,
      });
      expect(await garbage(p.inbound)).to.match(/^HTTP\/1\.1 400/);
      const withRefused = await linesOf(file, 2);
      expect(withRefused[1]).to.include({ response_code: 400, response_flags: 'DPE' });
      // Disabled: nothing more is written.
      await p.apiProxy.setPlan({ ...plan('api', appPort, off), version: 3 });
      expect(await get(p.port, '/not-counted')).to.equal(200);
      await sleep(700);
      expect(await linesOf(file, 2)).to.have.length(2);
    } finally {
      await p.stop();
    }
  });

  it('reports a file it cannot write once, and keeps serving', async () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const path = join(blocker, 'access.log');
    const p = await pair(
      { enabled: true, listenerLogs: true, target: { type: 'file', path } },
      { enabled: false, listenerLogs: true, target: { type: 'stdout' } },
    );
    try {
      for (let i = 0; i < 5; i++) expect(await get(p.port, `/x/${i}`)).to.equal(200);
      for (let waited = 0; errors.length === 0 && waited < 5_000; waited += 50) await sleep(50);
      const mine = errors.filter((e) => e.startsWith(path));
      expect(mine, 'one report').to.have.length(1);
    } finally {
      await p.stop();
    }
  });
});
