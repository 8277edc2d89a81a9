/**
 * An HTTP service across two agents: api's service-defaults say Protocol = "http", so api's
 * proxy decides every request by L7 intentions written through the API, and api's app sees
 * the verified caller in X-Forwarded-Client-Cert.
 */
import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
  agentArgs,
} from '../helpers/trellis-process.js';
import { freePort } from '../helpers/net.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', (e) => resolve({ status: 0, body: e.message }));
    r.end();
  });
}

describe('mesh: HTTP with L7 intentions through two agents', function () {
  this.timeout(90_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  const agents: TrellisProcess[] = [];
  let app: Server;
  let upstreamPort = 0;

  before(async () => {
    app = createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`${req.url} from ${String(req.headers['x-forwarded-client-cert'])}`);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    const appPort = (app.address() as { port: number }).port;
    server = await startServerProcess(tmp.make('http-srv'), 'srv');
    const base = `http://${server.address}`;
    const put = async (path: string, body: unknown): Promise<void> => {
      const r = await request(`${base}${path}`, { method: 'PUT', body: JSON.stringify(body) });
      expect(r.statusCode, await r.body.text()).to.equal(200);
    };
    await put('/v1/config', { Kind: 'service-defaults', Name: 'api', Protocol: 'http' });
    await put('/v1/connect/intentions/exact?source=web&destination=api', {
      Permissions: [
        { Action: 'deny', HTTP: { PathPrefix: '/api/admin' } },
        { Action: 'allow', HTTP: { PathPrefix: '/api', Methods: ['GET'] } },
      ],
    });
    const [apiSidecar, webSidecar] = [await freePort(), await freePort()];
    upstreamPort = await freePort();
    const conf = (name: string, text: string): string => {
      const dir = tmp.make(`http-${name}-conf`);
      writeFileSync(join(dir, `${name}.hcl`), text);
      return dir;
    };
    const apiConf = conf(
      'api',
      `service {\n  name = "api"\n  port = ${appPort}\n  connect { sidecar_service {\n    address = "127.0.0.1"\n    port = ${apiSidecar}\n  } }\n}\n`,
    );
    const webConf = conf(
      'web',
      `service {\n  name = "web"\n  port = 1\n  connect { sidecar_service {\n    address = "127.0.0.1"\n    port = ${webSidecar}\n    proxy { upstreams = [{ destination_name = "api", local_bind_port = ${upstreamPort} }] }\n  } }\n}\n`,
    );
    for (const [node, dir] of [
      ['h-api', apiConf],
      ['h-web', webConf],
    ] as const) {
      agents.push(
        await startTrellis(agentArgs(server.address, node, tmp.make(`http-${node}`), dir)),
      );
    }
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server.stop();
    app.close();
    tmp.removeAll();
  });

  it('allows and denies requests by path, and tells the app who called', async () => {
    const ok = await eventually(
      async () => {
        const r = await get(upstreamPort, '/api/items');
        return r.status === 200 ? r : undefined;
      },
      30_000,
      200,
    );
    expect(ok.body).to.match(
      /^\/api\/items from By=spiffe:\/\/[^;]+\/svc\/api;URI=spiffe:\/\/[^;]+\/svc\/web$/,
    );
    expect((await get(upstreamPort, '/api/admin/users')).status).to.equal(403);
    // No permission matches: the default policy decides (allow on this test server), as in Consul.
    expect((await get(upstreamPort, '/elsewhere')).status).to.equal(200);
  });

  it('writes access logs only while proxy-defaults AccessLogs enables them, to its file', async () => {
    const file = join(tmp.make('http-access'), 'logs', 'access.log');
    const config = async (AccessLogs: Record<string, unknown>): Promise<void> => {
      const r = await request(`http://${server.address}/v1/config`, {
        method: 'PUT',
        body: JSON.stringify({ Kind: 'proxy-defaults', Name: 'global', AccessLogs }),
      });
      expect(r.statusCode, await r.body.text()).to.equal(200);
    };
    const lines = (): Record<string, unknown>[] =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    // Off by default: traffic writes nothing.
    expect((await get(upstreamPort, '/api/quiet')).status).to.equal(200);
    await config({ Enabled: true, Type: 'file', Path: file });
    // Both sidecars (web's outbound, api's inbound) log the request once their plans have it.
    const seen = await eventually(
      async () => {
        await get(upstreamPort, '/api/logged');
        const l = lines().filter((x) => x.path === '/api/logged');
        const dirs = new Set(l.map((x) => x.direction));
        return dirs.has('inbound') && dirs.has('outbound') ? l : undefined;
      },
      30_000,
      300,
    );
    expect(seen.find((x) => x.direction === 'inbound')).to.include({
      component: 'access',
      source_service: 'web',
      destination_service: 'api',
      response_code: 200,
    });
    expect(
      lines().some((x) => x.path === '/api/quiet'),
      'nothing from before',
    ).to.equal(false);
    // Turned off again: the next requests add nothing.
    await config({ Enabled: false });
    await eventually(
      async () => {
        const before = lines().length;
        await get(upstreamPort, '/api/after-off');
        await new Promise((r) => setTimeout(r, 1_000));
        return lines().length === before ? true : undefined;
      },
      30_000,
      100,
    );
  });

  it('follows a changed intention on the next request', async () => {
    const r = await request(
      `http://${server.address}/v1/connect/intentions/exact?source=web&destination=api`,
      { method: 'PUT', body: JSON.stringify({ Action: 'deny' }) },
    );
    expect(r.statusCode).to.equal(200);
    await r.body.text();
    await eventually(
      async () => (await get(upstreamPort, '/api/items')).status !== 200,
      10_000,
      100,
    );
  });
});
