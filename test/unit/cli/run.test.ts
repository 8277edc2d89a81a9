import { expect } from 'chai';
import { refusedAddress, routes, startFakeApi, type FakeApi } from '../client/fake-api.js';
import type { CommandModule } from 'yargs';
import { action, runCli, type CliContext, type GlobalArgs } from '../../../src/cli/index.js';
import { trellis } from './harness.js';

describe('trellis CLI: flags, exit codes, output', () => {
  let fake: FakeApi | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const catalog = routes({
    'GET /v1/catalog/services': () => ({ json: { web: ['v1', 'http'], consul: [] }, index: 3 }),
    'GET /v1/catalog/nodes': () => ({ status: 500, text: 'rpc error: no leader' }),
    'GET /v1/health/state/any': () => ({ status: 400, text: 'Bad filter' }),
    'GET /v1/catalog/service/web': () => ({
      json: [
        {
          Node: 'n1',
          Address: '10.0.0.1',
          ServiceID: 'web-1',
          ServiceAddress: '',
          ServicePort: 8080,
          ServiceTags: ['v1'],
        },
      ],
    }),
  });

  it('prints an aligned table and exits 0', async () => {
    fake = await startFakeApi(catalog);
    const r = await trellis(['catalog', 'services', '--http-addr', fake.address]);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.equal('Service  Tags\nconsul\nweb      v1,http\n');
  });

  it('prints pretty JSON with --format json', async () => {
    fake = await startFakeApi(catalog);
    const r = await trellis([
      'catalog',
      'service',
      'web',
      '--format',
      'json',
      '--http-addr',
      fake.address,
    ]);
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout)).to.have.length(1);
    expect(r.stdout).to.contain('\n  {\n    "Node": "n1"');
  });

  it('falls back to the node address when the service has none', async () => {
    fake = await startFakeApi(catalog);
    const r = await trellis(['catalog', 'service', 'web', '--http-addr', fake.address]);
    expect(r.stdout.split('\n')[1]).to.match(/^n1\s+web-1\s+10\.0\.0\.1\s+8080\s+v1$/);
  });

  it('reads the address and token from the environment', async () => {
    fake = await startFakeApi(catalog);
    const r = await trellis(['catalog', 'services'], {
      env: { TRELLIS_HTTP_ADDR: fake.address, TRELLIS_HTTP_TOKEN: 'tok' },
    });
    expect(r.code).to.equal(0);
    expect(fake.requests[0]!.headers['x-consul-token']).to.equal('tok');
  });

  it('tries each address of a comma-separated --http-addr', async () => {
    fake = await startFakeApi(catalog);
    const dead = await refusedAddress();
    const r = await trellis(['catalog', 'services', '--http-addr', `${dead},${fake.address}`]);
    expect(r.code).to.equal(0);
  });

  it('exits 1 with one line when the server is unreachable', async () => {
    const dead = await refusedAddress();
    const r = await trellis(['members', '--http-addr', dead]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(
      `Error: Cannot reach the Trellis HTTP API; tried ${dead} (ECONNREFUSED)\n`,
    );
  });

  it('exits 1 on HTTP 5xx and 2 on HTTP 400, quoting the server', async () => {
    fake = await startFakeApi(catalog);
    const five = await trellis(['catalog', 'nodes', '--http-addr', fake.address]);
    expect(five.code).to.equal(1);
    expect(five.stderr).to.equal(
      'Error: GET /v1/catalog/nodes failed with HTTP 500: rpc error: no leader\n',
    );
    const four = await trellis(['health', 'state', 'any', '--http-addr', fake.address]);
    expect(four.code).to.equal(2);
    expect(four.stderr).to.contain('HTTP 400: Bad filter');
  });

  for (const [argv, message] of [
    [['catalog', 'services', '--bogus'], 'Error: Unknown argument: bogus'],
    [['catalgo'], 'Error: Unknown command; did you mean "catalog"?'],
    [['kv'], 'Error: Missing subcommand: expected one of get, put, delete, list'],
    [[], 'Error: Missing command'],
    [['--format', 'xml', 'members'], 'Error: Invalid values: Argument: format'],
    [['health', 'state', 'sick'], 'Error: Invalid values: Argument: state'],
    [['kv', 'get'], 'Error: Not enough non-option arguments'],
    [['kv', 'put', 'k', 'v', '--cas', '-1'], 'Error: --cas must be a non-negative integer'],
    [
      ['kv', 'put', 'k', 'v', '--acquire', 's', '--release', 's'],
      'Error: Arguments acquire and release are mutually exclusive',
    ],
  ] as const) {
    it(`exits 2 for usage error: trellis ${argv.join(' ')}`, async () => {
      const dead = await refusedAddress();
      const r = await trellis([...argv], { env: { TRELLIS_HTTP_ADDR: dead } });
      expect(r.code).to.equal(2);
      expect(r.stdout).to.equal('');
      expect(r.stderr.startsWith(message), r.stderr).to.equal(true);
      expect(r.stderr).to.match(/Run "trellis [a-z ]*--help" for usage\.\n$/);
      expect(r.stderr).not.to.match(/\n\s+at /);
    });
  }

  it("points usage errors at the command's own help", async () => {
    const r = await trellis(['kv', 'get', 'a', '--nope']);
    expect(r.stderr).to.contain('Run "trellis kv get --help" for usage.');
  });

  it('exits 2 for an empty --http-addr', async () => {
    const r = await trellis(['members', '--http-addr', ' , ']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Error: --http-addr is empty');
  });

  it('prints help with examples on stdout and exits 0, without leaking the token', async () => {
    for (const argv of [
      ['--help'],
      ['kv', '--help'],
      ['kv', 'put', '--help'],
      ['watch', 'service', '--help'],
    ]) {
      const r = await trellis(argv, { env: { TRELLIS_HTTP_TOKEN: 'very-secret' } });
      expect(r.code, argv.join(' ')).to.equal(0);
      expect(r.stdout).to.contain('Examples:');
      expect(r.stdout).not.to.contain('very-secret');
    }
  });

  it('lets the binary add its own commands', async () => {
    let bind: string | undefined;
    const server = (
      ctx: CliContext,
    ): CommandModule<GlobalArgs, GlobalArgs & { bind?: string }> => ({
      command: 'server',
      describe: 'Run a server',
      builder: (b) => b.option('bind', { type: 'string' }).example('$0 server', 'Run'),
      handler: action<{ bind?: string }>(ctx, async (_env, args) => {
        bind = args.bind;
      }),
    });
    const io = { stdout: () => undefined, stderr: () => undefined, env: {} };
    const code = await runCli(['server', '--bind', 'x'], io, {
      register: (y, ctx) => y.command(server(ctx)),
    });
    expect(code).to.equal(0);
    expect(bind).to.equal('x');
  });
});
