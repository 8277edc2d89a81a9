/**
 * Intentions end to end with real processes: a `trellis server` and a `trellis agent` whose
 * /v1/agent/connect/authorize follows intention changes and keeps answering while the server
 * is down; and the CLI (`trellis intention ...`, `trellis config ...` with an HCL file) against
 * a real server.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  TRELLIS_BIN,
  eventually,
  hostPort,
  startServerProcess,
  startTrellis,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

const WEB = 'spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web';

interface Authz {
  Authorized: boolean;
  Reason: string;
}

async function http(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: unknown; text: string }> {
  const r = await request(url, {
    method: method as 'GET',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.body.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.statusCode, body: parsed, text };
}

describe('intentions with a real server and agent', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let serverDir = '';
  let server: TrellisProcess;
  let agent: TrellisProcess;
  let serverAddr = '';

  const authorize = async (): Promise<Authz> => {
    const r = await http('POST', `http://${agent.address}/v1/agent/connect/authorize`, {
      Target: 'api',
      ClientCertURI: WEB,
    });
    expect(r.status, r.text).to.equal(200);
    return r.body as Authz;
  };
  const setIntention = async (action: 'allow' | 'deny'): Promise<void> => {
    const r = await http(
      'PUT',
      `http://${serverAddr}/v1/connect/intentions/exact?source=web&destination=api`,
      { Action: action },
    );
    expect(r.status, r.text).to.equal(200);
  };
  /** Waits for the agent's answer to change, and how long that took (for the log only). */
  const follows = async (authorized: boolean): Promise<number> => {
    const started = performance.now();
    await eventually(async () => (await authorize()).Authorized === authorized, 10_000, 20);
    return performance.now() - started;
  };

  before(async () => {
    serverDir = tmp.make('ixn-srv');
    server = await startServerProcess(serverDir, 'srv');
    serverAddr = server.address;
    agent = await startTrellis([
      'agent',
      '--server',
      serverAddr,
      '--node',
      'ixn-agent',
      '--data-dir',
      tmp.make('ixn-agent'),
      '--bind',
      '127.0.0.1:0',
    ]);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    tmp.removeAll();
  });

  it('authorize follows intention changes', async () => {
    expect(await authorize()).to.deep.equal({
      Authorized: true,
      Reason: 'Default behavior configured by ACLs',
    });
    const timings: number[] = [];
    await setIntention('deny');
    timings.push(await follows(false));
    expect(await authorize()).to.deep.equal({
      Authorized: false,
      Reason: 'Matched L4 intention: web => api (deny)',
    });
    await setIntention('allow');
    timings.push(await follows(true));
    expect((await authorize()).Reason).to.equal('Matched L4 intention: web => api (allow)');
    // A wildcard deny below the exact allow changes nothing for web.
    const r = await http(
      'PUT',
      `http://${serverAddr}/v1/connect/intentions/exact?source=*&destination=api`,
      { Action: 'deny' },
    );
    expect(r.status).to.equal(200);
    expect((await authorize()).Authorized).to.equal(true);
    process.stderr.write(
      `      (agent followed in ${timings.map((x) => x.toFixed(0)).join(', ')} ms)\n`,
    );
  });

  it('keeps answering while the server is stopped, and follows again after it returns', async () => {
    await setIntention('deny');
    await follows(false);
    await server.stop();
    for (let i = 0; i < 5; i++) {
      expect(await authorize()).to.deep.equal({
        Authorized: false,
        Reason: 'Matched L4 intention: web => api (deny)',
      });
      await new Promise((r) => setTimeout(r, 200));
    }
    // Same data dir and port: the agent's server address works again.
    const { port } = hostPort(serverAddr);
    server = await startTrellis([
      'server',
      '--data-dir',
      serverDir,
      '--bind',
      `127.0.0.1:${port}`,
      '--node',
      'srv',
      '--acl-default-policy',
      'allow',
    ]);
    await eventually(
      async () => (await http('GET', `http://${serverAddr}/v1/status/leader`)).status === 200,
    );
    await setIntention('allow');
    await eventually(async () => (await authorize()).Authorized, 30_000, 50);
  });
});

describe('trellis intention and trellis config against a real server', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  let server: TrellisProcess;
  let dir = '';

  interface CliResult {
    code: number | null;
    stdout: string;
    stderr: string;
  }

  function cli(args: string[]): Promise<CliResult> {
    const env = { ...process.env };
    delete env.TRELLIS_HTTP_ADDR;
    delete env.TRELLIS_HTTP_TOKEN;
    const proc = spawn(process.execPath, [TRELLIS_BIN, ...args, '--http-addr', server.address], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r: CliResult = { code: null, stdout: '', stderr: '' };
    proc.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
    return new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', (code) => resolve({ ...r, code }));
    });
  }

  async function ok(args: string[]): Promise<string> {
    const r = await cli(args);
    expect(r.code, `trellis ${args.join(' ')}\n${r.stdout}${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  before(async () => {
    dir = tmp.make('ixn-cli');
    server = await startServerProcess(tmp.make('ixn-cli-srv'), 'srv');
    writeFileSync(
      join(dir, 'api-defaults.hcl'),
      `Kind     = "service-defaults"
Name     = "api"
Protocol = "http"
`,
    );
    writeFileSync(
      join(dir, 'api-intentions.hcl'),
      `Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name = "web"
    Permissions = [
      { Action = "allow", HTTP { PathPrefix = "/public", Methods = ["GET"] } },
      { Action = "deny", HTTP { PathPrefix = "/" } },
    ]
  },
  { Name = "*", Action = "deny" },
]
`,
    );
    writeFileSync(
      join(dir, 'router.hcl'),
      `Kind = "service-router"
Name = "tcpsvc"
Routes = [{ Match { HTTP { PathPrefix = "/v2" } } }]
`,
    );
    writeFileSync(
      join(dir, 'rules.hcl'),
      `Description = "reads only"
Permissions = [
  { Action = "allow", HTTP { PathPrefix = "/api", Methods = ["GET"] } },
  { Action = "deny", HTTP { PathPrefix = "/" } },
]
`,
    );
  });

  after(async () => {
    await server?.stop();
    tmp.removeAll();
  });

  it('intention create, check, list, get and delete', async () => {
    expect(await ok(['intention', 'create', 'web', 'db', '--allow'])).to.contain(
      'Created: web => db (allow)',
    );
    const again = await cli(['intention', 'create', 'web', 'db', '--deny']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain('already exists');
    expect(await ok(['intention', 'create', 'web', 'db', '--deny', '--replace'])).to.contain(
      'Replaced: web => db (deny)',
    );
    await ok(['intention', 'create', '*', 'db', '--allow']);

    const denied = await cli(['intention', 'check', 'web', 'db']);
    expect(denied.code).to.equal(1);
    expect(denied.stdout).to.contain('Denied').and.contain('decided by intention web => db (deny)');
    const allowed = await cli(['intention', 'check', 'cache', 'db']);
    expect(allowed.code).to.equal(0);
    expect(allowed.stdout).to.contain('Allowed').and.contain('intention * => db (allow)');
    const byDefault = await cli(['intention', 'check', 'web', 'nothing-here']);
    expect(byDefault.code, byDefault.stderr).to.equal(0);
    expect(byDefault.stdout).to.contain('the default policy (allow)');

    const list = await ok(['intention', 'list']);
    const lines = list.trim().split('\n');
    expect(lines[0]).to.match(/^Source\s+Action\s+Destination\s+Precedence/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4).join(' '))).to.deep.equal([
      'web deny db 9',
      '* allow db 8',
    ]);
    const json = JSON.parse(await ok(['intention', 'list', '--format', 'json'])) as unknown[];
    expect(json).to.have.length(2);
    expect(await ok(['intention', 'get', 'web', 'db'])).to.match(/Action:\s+deny/);

    expect(await ok(['intention', 'delete', 'web', 'db'])).to.contain(
      'Intention deleted: web => db',
    );
    expect((await cli(['intention', 'delete', 'web', 'db'])).code).to.equal(1);
    expect(await ok(['intention', 'delete', '*', 'db'])).to.contain('Intention deleted');
  });

  it('config write/read/list/delete with HCL files, and L7 checks that explain themselves', async () => {
    expect(await ok(['config', 'write', 'api-defaults.hcl'])).to.contain(
      'Config entry written: service-defaults/api',
    );
    await ok(['config', 'write', 'api-intentions.hcl']);
    const read = JSON.parse(
      await ok(['config', 'read', '--kind', 'service-intentions', '--name', 'api']),
    ) as { Sources: { Name: string; Precedence: number }[] };
    expect(read.Sources.map((s) => [s.Name, s.Precedence])).to.deep.equal([
      ['web', 9],
      ['*', 8],
    ]);
    expect(await ok(['config', 'list', '--kind', 'service-defaults'])).to.contain('api');

    const get = await cli([
      'intention',
      'check',
      'web',
      'api',
      '--path',
      '/public/x',
      '--method',
      'GET',
    ]);
    expect(get.code).to.equal(0);
    expect(get.stdout).to.contain('intention web => api, permission 1 (allow)');
    const post = await cli([
      'intention',
      'check',
      'web',
      'api',
      '--path',
      '/public/x',
      '--method',
      'POST',
    ]);
    expect(post.code).to.equal(1);
    expect(post.stdout).to.contain('permission 2 (deny)');
    const l4 = await cli(['intention', 'check', 'web', 'api']);
    expect(l4.code).to.equal(1);
    expect(l4.stdout).to.contain('L7 permissions');

    // The server refuses a router on a tcp service; nothing is written.
    // A 400 from the server exits 2, as a bad file does.
    const router = await cli(['config', 'write', 'router.hcl']);
    expect(router.code).to.equal(2);
    expect(router.stderr).to.contain('does not support routing');
    const missing = await cli(['config', 'read', '--kind', 'service-router', '--name', 'tcpsvc']);
    expect(missing.code).to.equal(1);

    // A defaults change that would break the L7 intentions is refused too.
    writeFileSync(
      join(dir, 'api-tcp.hcl'),
      'Kind = "service-defaults"\nName = "api"\nProtocol = "tcp"\n',
    );
    const tcp = await cli(['config', 'write', 'api-tcp.hcl']);
    expect(tcp.code).to.equal(2);
    expect(tcp.stderr).to.contain('would invalidate service-intentions "api"');

    await ok(['config', 'delete', '--kind', 'service-intentions', '--name', 'api']);
    await ok(['config', 'delete', '--kind', 'service-defaults', '--name', 'api']);
    expect(await ok(['config', 'list', '--kind', 'service-defaults'])).to.not.contain('api');
  });

  it('intention create --file with L7 rules', async () => {
    await ok(['config', 'write', 'api-defaults.hcl']);
    expect(await ok(['intention', 'create', 'web', 'api', '--file', 'rules.hcl'])).to.contain(
      'Created: web => api (2 permissions)',
    );
    const r = await cli(['intention', 'check', 'web', 'api', '--path', '/api/items']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.contain('permission 1 (allow)');
    expect(await ok(['intention', 'get', 'web', 'api'])).to.contain('1. allow PathPrefix "/api"');
  });
});
