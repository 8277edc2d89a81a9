/**
 * `trellis agent` as an operator runs it: services from a config dir with real HTTP/TCP checks,
 * SIGHUP reloads (a broken file changes nothing), refusal to start on a broken config, services
 * registered through the API surviving a restart, and failover to a second server address.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync, unlinkSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { request } from 'undici';
import {
  eventually,
  startTrellis,
  TRELLIS_BIN,
  type TrellisProcess,
  getJSON,
  tempDirs,
} from '../helpers/trellis-process.js';

interface Entry {
  Service: { ID: string };
  Checks: { CheckID: string; Status: string; Output: string }[];
}

describe('trellis agent', function () {
  this.timeout(60_000);
  let server: TrellisProcess;
  let app: Server;
  let appHealthy = true;
  let appPort = 0;
  const started: TrellisProcess[] = [];

  const tmp = tempDirs();
  const dir = (name: string): string => tmp.make(name);

  const agentArgs = (node: string, dataDir: string, extra: string[] = []): string[] => [
    'agent',
    '--server',
    server.address,
    '--node',
    node,
    '--data-dir',
    dataDir,
    '--bind',
    '127.0.0.1:0',
    '--heartbeat-interval',
    '300',
    '--heartbeat-ttl',
    '3000',
    '--sync-interval',
    '2000',
    ...extra,
  ];

  const startAgent = async (args: string[]): Promise<TrellisProcess> => {
    const p = await startTrellis(args);
    started.push(p);
    return p;
  };

  before(async () => {
    server = await startTrellis([
      'server',
      '--data-dir',
      dir('srv'),
      '--bind',
      '127.0.0.1:0',
      '--node',
      'srv',
      '--acl-default-policy',
      'allow',
    ]);
    app = createServer((_req, res) => {
      res.statusCode = appHealthy ? 200 : 500;
      res.end(appHealthy ? 'ok' : 'broken');
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appPort = (app.address() as { port: number }).port;
  });

  after(async () => {
    for (const p of started) await p.stop();
    await server?.stop();
    await new Promise((r) => app.close(r));
    tmp.removeAll();
  });

  it('runs the checks of services from its config dir and reports them to the catalog', async () => {
    const conf = dir('conf');
    writeFileSync(
      join(conf, 'web.hcl'),
      `service {
  name = "web"
  id   = "web-1"
  port = ${appPort}
  tags = ["v1"]
  check {
    id       = "web-http"
    http     = "http://127.0.0.1:${appPort}/health"
    interval = "1s"
    timeout  = "1s"
  }
}
`,
    );
    writeFileSync(
      join(conf, 'tcp.json'),
      JSON.stringify({
        service: {
          name: 'raw',
          port: appPort,
          check: { tcp: `127.0.0.1:${appPort}`, interval: '1s' },
        },
      }),
    );
    const agent = await startAgent(agentArgs('conf-host', dir('a1'), ['--config-dir', conf]));
    const base = `http://${agent.address}`;
    const passing = await eventually(async () => {
      const e = await getJSON<Entry[]>(`${base}/v1/health/service/web?passing`);
      return e.length === 1 ? e : undefined;
    });
    expect(passing[0]!.Checks.find((c) => c.CheckID === 'web-http')!.Output).to.include('200 OK');
    await eventually(
      async () => (await getJSON<Entry[]>(`${base}/v1/health/service/raw?passing`)).length === 1,
    );

    appHealthy = false;
    const critical = await eventually(async () => {
      const e = await getJSON<Entry[]>(`${base}/v1/health/service/web`);
      const c = e[0]?.Checks.find((x) => x.CheckID === 'web-http');
      return c?.Status === 'critical' ? c : undefined;
    });
    expect(critical.Output).to.include('500');
    appHealthy = true;

    // SIGHUP with a broken file: refused, the running configuration stays.
    writeFileSync(join(conf, 'zz-broken.hcl'), 'service {\n  name = "x"\n  prot = 1\n}\n');
    agent.proc.kill('SIGHUP');
    await eventually(async () => agent.output().includes('reload refused'));
    expect(agent.output()).to.include('zz-broken.hcl:3:3: service.prot: unknown key; did you mean');
    const services = await getJSON<Record<string, string[]>>(`${base}/v1/catalog/services`);
    expect(services).to.have.property('web');

    // A fixed config dir: new service added, removed file's service deregistered.
    unlinkSync(join(conf, 'zz-broken.hcl'));
    unlinkSync(join(conf, 'tcp.json'));
    writeFileSync(join(conf, 'api.hcl'), 'service {\n  name = "api"\n  port = 9000\n}\n');
    agent.proc.kill('SIGHUP');
    await eventually(async () => {
      const s = await getJSON<Record<string, string[]>>(`${base}/v1/catalog/services`);
      return 'api' in s && !('raw' in s) && 'web' in s;
    });
  });

  it('refuses to start with a broken config dir, printing every error with its position', async () => {
    const conf = dir('badconf');
    writeFileSync(
      join(conf, 'bad.hcl'),
      'service {\n  name = "web"\n  port = 70000\n  tagz = ["a"]\n}\n',
    );
    const child = spawn(
      process.execPath,
      [TRELLIS_BIN, ...agentArgs('bad-host', dir('a2'), ['--config-dir', conf])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).to.equal(2);
    expect(err).to.include('bad.hcl:3:10: service.port: port 70000 is out of range');
    expect(err).to.include('bad.hcl:4:3: service.tagz: unknown key; did you mean "tags"?');
    expect(err).to.not.match(/\n\s+at /);
  });

  it('keeps API-registered services across a restart and checks API input', async () => {
    const data = dir('a3');
    let agent = await startAgent(agentArgs('api-host', data));
    let base = `http://${agent.address}`;
    const put = (path: string, body: unknown) =>
      request(`${base}${path}`, { method: 'PUT', body: JSON.stringify(body) });
    const ok = await put('/v1/agent/service/register', {
      Name: 'cache',
      ID: 'cache-1',
      Port: 6379,
      Check: { TTL: '30s', Status: 'passing' },
    });
    expect(ok.statusCode).to.equal(200);
    await ok.body.dump();

    const typo = await put('/v1/agent/service/register', { Name: 'cache', Prot: 1 });
    expect(typo.statusCode).to.equal(400);
    expect(await typo.body.text()).to.include('Prot: unknown field; did you mean "Port"?');
    const script = await put('/v1/agent/check/register', {
      Name: 'sh',
      Args: ['/bin/true'],
      Interval: '10s',
    });
    expect(script.statusCode).to.equal(400);
    expect(await script.body.text()).to.include('--enable-script-checks');
    const missing = await request(`${base}/v1/agent/service/deregister/nope`, { method: 'PUT' });
    expect(missing.statusCode).to.equal(404);
    await missing.body.dump();

    await eventually(
      async () => (await getJSON<Entry[]>(`${base}/v1/health/service/cache?passing`)).length === 1,
    );
    await agent.stop();
    started.pop();
    agent = await startAgent(agentArgs('api-host', data));
    base = `http://${agent.address}`;
    const local = await getJSON<Record<string, { Service: string }>>(`${base}/v1/agent/services`);
    expect(local['cache-1']?.Service).to.equal('cache');
    await eventually(
      async () => (await getJSON<Entry[]>(`${base}/v1/health/service/cache`)).length === 1,
    );
  });

  it('answers hash-blocking reads of a local service when it changes', async () => {
    const agent = await startAgent(agentArgs('hash-host', dir('a5')));
    const base = `http://${agent.address}`;
    const register = async (tags: string[]): Promise<void> => {
      const r = await request(`${base}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify({ Name: 'hashed', ID: 'hashed-1', Port: 1, Tags: tags }),
      });
      expect(r.statusCode).to.equal(200);
      await r.body.dump();
    };
    await register(['a']);
    const first = await request(`${base}/v1/agent/service/hashed-1`);
    const hash = first.headers['x-consul-contenthash'] as string;
    expect(hash).to.match(/^[0-9a-f]{16}$/);
    await first.body.dump();
    let answered = false;
    const waiting = request(`${base}/v1/agent/service/hashed-1?hash=${hash}&wait=20s`).then(
      async (r) => {
        answered = true;
        return {
          hash: r.headers['x-consul-contenthash'],
          body: (await r.body.json()) as { Tags: string[] },
        };
      },
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(answered, 'an unchanged service keeps the read waiting').to.equal(false);
    await register(['b']);
    const res = await waiting;
    expect(res.hash).to.not.equal(hash);
    expect(res.body.Tags).to.deep.equal(['b']);
  });

  it('forwards to the next server when the first cannot be reached', async () => {
    const data = dir('a4');
    mkdirSync(data, { recursive: true });
    const agent = await startAgent([
      'agent',
      '--server',
      '127.0.0.1:1',
      '--server',
      server.address,
      '--node',
      'failover-host',
      '--data-dir',
      data,
      '--bind',
      '127.0.0.1:0',
    ]);
    const services = await getJSON<Record<string, string[]>>(
      `http://${agent.address}/v1/catalog/services`,
    );
    expect(services).to.have.property('consul');
    await eventually(async () => {
      const nodes = await getJSON<{ Node: string }[]>(`http://${agent.address}/v1/catalog/nodes`);
      return nodes.some((n) => n.Node === 'failover-host');
    });
  });
});
