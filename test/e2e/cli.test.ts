/** The `trellis` CLI as an operator runs it: real child processes against `trellis dev`. */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TRELLIS_BIN,
  eventually,
  removeDir,
  startTrellis,
  tempDir,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  stdin?: string;
  /** Defaults to the dev process; pass null to leave --http-addr out. */
  addr?: string | null;
}

/** The environment without TRELLIS_* so only the flags decide where the CLI goes. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TRELLIS_HTTP_ADDR;
  delete env.TRELLIS_HTTP_TOKEN;
  return env;
}

/** Files written by the tests: a good HCL and JSON definition, and a broken pair. */
function definitionFiles(devAddress: string): Record<string, string> {
  return {
    'web.hcl': `service {
  name = "web"
  id   = "web-1"
  port = 8080
  tags = ["v1", "primary"]
  meta = { version = "1" }
  check {
    id       = "web-http"
    http     = "http://${devAddress}/v1/status/leader"
    interval = "1s"
    timeout  = "2s"
  }
}
`,
    'api.json': `{
  "service": {
    "name": "api", "id": "api-1", "port": 9090, "tags": ["internal"],
    "check": { "id": "api-ttl", "ttl": "1m" }
  }
}
`,
    // Line 3 column 3 is the misspelt key; line 4 column 10 the out-of-range port.
    'broken.hcl': `service {
  name = "cache"
  prot = 6379
  port = 99999
}
`,
    'good.hcl': `service {
  name = "goodsvc"
  port = 7000
}
`,
  };
}

describe('trellis CLI against trellis dev', function () {
  this.timeout(120_000);
  let dev: TrellisProcess;
  let dataDir: string;
  let defsDir: string;
  const started: ChildProcess[] = [];

  /** Starts `trellis ...args` in the definitions directory, capturing its output. */
  function launch(args: string[], opts: CliOptions = {}) {
    const addr = opts.addr === undefined ? dev.address : opts.addr;
    const argv = addr === null ? args : [...args, '--http-addr', addr];
    const proc = spawn(process.execPath, [TRELLIS_BIN, ...argv], {
      cwd: defsDir,
      env: cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    started.push(proc);
    const r: CliResult = { code: null, stdout: '', stderr: '' };
    proc.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
    proc.stdin.end(opts.stdin ?? '');
    const done = new Promise<CliResult>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', (code) => resolve({ ...r, code }));
    });
    return { proc, output: r, done };
  }

  /** Runs `trellis ...args` and waits for it to exit. */
  function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
    return launch(args, opts).done;
  }

  /** Runs a command that must succeed and returns its stdout. */
  async function ok(args: string[], opts: CliOptions = {}): Promise<string> {
    const r = await cli(args, opts);
    expect(r.code, `trellis ${args.join(' ')}\n${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  /** The service names `catalog services --format json` reports. */
  async function catalogNames(): Promise<string[]> {
    return Object.keys(JSON.parse(await ok(['catalog', 'services', '--format', 'json'])) as object);
  }

  before(async () => {
    dataDir = tempDir('cli-dev');
    defsDir = tempDir('cli-defs');
    dev = await startTrellis(
      ['dev', '--bind', '127.0.0.1:0', '--data-dir', dataDir, '--node', 'clinode'],
      { timeoutMs: 45_000 },
    );
    for (const [name, text] of Object.entries(definitionFiles(dev.address))) {
      writeFileSync(join(defsDir, name), text);
    }
  });

  after(async () => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await dev?.stop();
    removeDir(dataDir);
    removeDir(defsDir);
  });

  it('catalog services lists consul and the demo service, as a table and as JSON', async () => {
    const table = await eventually(async () => {
      const out = await ok(['catalog', 'services']);
      return /^demo\s+demo$/m.test(out) && out;
    }, 30_000);
    expect(table.split('\n')[0]).to.match(/^Service\s+Tags$/);
    expect(table).to.match(/^consul$/m);
    const json: unknown = JSON.parse(await ok(['catalog', 'services', '--format', 'json']));
    expect(json).to.deep.include({ consul: [], demo: ['demo'] });
  });

  it('services register web.hcl api.json: visible in catalog and health', async () => {
    const out = await ok(['services', 'register', 'web.hcl', 'api.json']);
    expect(out).to.contain('Registered service: web-1').and.contain('Registered service: api-1');
    await eventually(async () => {
      const names = await catalogNames();
      return names.includes('web') && names.includes('api');
    }, 30_000);
    expect(await ok(['catalog', 'services'])).to.match(/^web\s+primary,v1$/m);
    expect(await ok(['catalog', 'service', 'web'])).to.match(
      /^clinode\s+web-1\s+127\.0\.0\.1\s+8080\s+v1,primary$/m,
    );
    // The HTTP check polls the dev API itself, so it turns passing once it has run.
    await eventually(async () => {
      const health = await ok(['health', 'service', 'web']);
      return /^clinode\s+web-1\s+127\.0\.0\.1\s+8080\s+passing\s+v1,primary$/m.test(health);
    }, 30_000);
    expect(await ok(['health', 'checks', 'web'])).to.match(
      /^clinode\s+web-http\s+.*\s+passing\s+web\b/m,
    );
    await eventually(
      async () =>
        /^clinode\s+api-ttl\s+.*\s+critical\s+api\b/m.test(await ok(['health', 'checks', 'api'])),
      30_000,
    );
    const entries = JSON.parse(await ok(['health', 'service', 'web', '--format', 'json'])) as {
      Service: { Meta: Record<string, string> };
    }[];
    expect(entries[0]?.Service.Meta).to.deep.include({ version: '1' });
  });

  it('services deregister removes services by ID and by file', async () => {
    await ok(['services', 'register', 'web.hcl', 'api.json']);
    await eventually(async () => (await catalogNames()).includes('web'), 30_000);
    expect(await ok(['services', 'deregister', 'web-1'])).to.contain('Deregistered service: web-1');
    expect(await ok(['services', 'deregister', '-f', 'api.json'])).to.contain(
      'Deregistered service: api-1',
    );
    await eventually(async () => {
      const names = await catalogNames();
      return !names.includes('web') && !names.includes('api');
    }, 30_000);
    expect(await ok(['catalog', 'service', 'web', '--format', 'json'])).to.match(/^\[\]\s*$/);
  });

  it('services register with a broken file: exit 2, positioned problems, nothing registered', async () => {
    const r = await cli(['services', 'register', 'broken.hcl', 'good.hcl']);
    expect(r.code).to.equal(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).to.include('broken.hcl:3:3: service.prot: unknown key; did you mean "port"?');
    expect(r.stderr).to.match(/^broken\.hcl:4:10: service\.port: port 99999 is out of range/m);
    expect(lines.at(-1)).to.match(/^Error: Nothing was registered/);
    expect(r.stdout).to.equal('');
    const agentServices = JSON.parse(
      await (await fetch(`http://${dev.address}/v1/agent/services`)).text(),
    ) as Record<string, unknown>;
    expect(agentServices).to.not.have.any.keys('goodsvc', 'cache');
    expect(await catalogNames()).to.not.include.oneOf(['goodsvc', 'cache']);
  });

  it('kv put and get, from an argument and from stdin', async () => {
    expect(await ok(['kv', 'put', 'app/x', 'hello'])).to.contain('Success!');
    expect(await ok(['kv', 'get', 'app/x'])).to.equal('hello\n');
    await ok(['kv', 'put', 'app/x', '-'], { stdin: 'from-stdin' });
    expect(await ok(['kv', 'get', 'app/x'])).to.equal('from-stdin\n');
    expect(await ok(['kv', 'list', 'app/'])).to.match(/^app\/x$/m);
  });

  it('kv list shows the keys under a prefix', async () => {
    await ok(['kv', 'put', 'list/a', '1']);
    await ok(['kv', 'put', 'list/b/c', '2']);
    await ok(['kv', 'put', 'other/d', '3']);
    expect(await ok(['kv', 'list', 'list/'])).to.equal('list/a\nlist/b/c\n');
    expect(JSON.parse(await ok(['kv', 'list', 'list/', '--format', 'json']))).to.deep.equal([
      'list/a',
      'list/b/c',
    ]);
  });

  it('kv put --cas: a stale index exits 1 with an explanation; the current one writes', async () => {
    await ok(['kv', 'put', 'cas/x', 'old']);
    const pair = JSON.parse(await ok(['kv', 'get', 'cas/x', '--format', 'json'])) as {
      ModifyIndex: number;
    };
    expect(pair.ModifyIndex).to.be.greaterThan(1);
    const stale = await cli(['kv', 'put', 'cas/x', 'new', '--cas', '1']);
    expect(stale.code).to.equal(1);
    expect(stale.stderr).to.match(/check-and-set failed.*ModifyIndex is no longer 1/);
    expect(await ok(['kv', 'get', 'cas/x'])).to.equal('old\n');
    await ok(['kv', 'put', 'cas/x', 'new', '--cas', String(pair.ModifyIndex)]);
    expect(await ok(['kv', 'get', 'cas/x'])).to.equal('new\n');
  });

  it('kv delete --recurse removes a prefix; kv get then exits 1 saying so', async () => {
    await ok(['kv', 'put', 'del/x', 'a']);
    await ok(['kv', 'put', 'del/y/z', 'b']);
    expect(await ok(['kv', 'delete', 'del/', '--recurse'])).to.contain('del/');
    const r = await cli(['kv', 'get', 'del/x']);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim()).to.equal('Error: No key exists at: del/x');
    expect(r.stdout).to.equal('');
    expect(await ok(['kv', 'list', 'del/'])).to.equal('');
  });

  it('members lists clinode as alive', async () => {
    expect(await ok(['members'])).to.match(/^clinode\s+\S+\s+alive\b/m);
    const members = JSON.parse(await ok(['members', '--format', 'json'])) as {
      Name: string;
      Status: number;
    }[];
    expect(members.find((m) => m.Name === 'clinode')?.Status).to.equal(1);
  });

  it('watch key --format json prints the value, then each change, and ends on SIGINT', async () => {
    await ok(['kv', 'put', 'app/w', 'v0']);
    const watch = launch(['watch', 'key', 'app/w', '--format', 'json']);
    const values = (): string[] =>
      watch.output.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const pair = JSON.parse(l) as { Value: string };
          return Buffer.from(pair.Value, 'base64').toString('utf8');
        });
    await eventually(async () => values().length >= 1, 30_000);
    for (const v of ['v1', 'v2', 'v3']) {
      await ok(['kv', 'put', 'app/w', v]);
      await eventually(async () => values().includes(v), 30_000);
    }
    watch.proc.kill('SIGINT');
    const r = await watch.done;
    expect(r.code, r.stderr).to.equal(0);
    expect(values()).to.deep.equal(['v0', 'v1', 'v2', 'v3']);
    expect(r.stderr).to.equal('');
  });

  it('usage errors exit 2 with a message and a pointer to --help', async () => {
    const unknownCommand = await cli(['bogus']);
    expect(unknownCommand.code).to.equal(2);
    expect(unknownCommand.stderr).to.match(/^Error: Unknown command/m);
    expect(unknownCommand.stderr).to.contain('Run "trellis --help" for usage.');

    const unknownFlag = await cli(['catalog', 'services', '--bogus']);
    expect(unknownFlag.code).to.equal(2);
    expect(unknownFlag.stderr).to.match(/^Error: Unknown argument: bogus$/m);
    expect(unknownFlag.stderr).to.contain('Run "trellis catalog services --help" for usage.');

    const noKey = await cli(['kv', 'get']);
    expect(noKey.code).to.equal(2);
    expect(noKey.stderr).to.match(/^Error: .+/m);
    expect(noKey.stderr).to.contain('Run "trellis kv get --help" for usage.');
  });

  it('services register --help shows usage with an example', async () => {
    const out = await ok(['services', 'register', '--help'], { addr: null });
    expect(out).to.contain('trellis services register <files..>');
    expect(out).to.contain('Examples:');
    expect(out).to.match(/trellis services register web\.hcl\s+Register/);
  });

  it('an unreachable --http-addr exits 1 with one line naming the address', async () => {
    const r = await cli(['catalog', 'services'], { addr: '127.0.0.1:1' });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.match(/^Error: .*127\.0\.0\.1:1/);
    expect(r.stderr).to.not.match(/\n\s+at /);
  });
});
