/**
 * Unused flags through the real binary (test/unit/cli/unused-flags.test.ts walks every command
 * in-process): `trellis dev --http-addr` is refused rather than ignored, a daemon refuses the
 * client flags, and `trellis --version` answers.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TRELLIS_BIN } from '../helpers/trellis-process.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function trellis(argv: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TRELLIS_HTTP_ADDR;
  delete env.TRELLIS_HTTP_TOKEN;
  const proc = spawn(process.execPath, [TRELLIS_BIN, ...argv], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Run = { code: null, stdout: '', stderr: '' };
  proc.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ ...r, code }));
  });
}

describe('trellis binary: unused flags and --version', function () {
  this.timeout(60_000);

  it('trellis dev --http-addr exits 2 saying where dev listens, and starts nothing', async () => {
    const r = await trellis(['dev', '--http-addr', '127.0.0.1:9500']);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(
      'Error: Unknown argument: http-addr (trellis dev listens where --bind says)\n' +
        'Run "trellis dev --help" for usage.\n',
    );
  });

  it('trellis server --token and trellis lab up --format exit 2 naming the flag', async () => {
    const server = await trellis(['server', '--data-dir', '/nonexistent', '--token', 't']);
    expect(server.code).to.equal(2);
    expect(server.stderr.split('\n')[0]).to.equal('Error: Unknown argument: token');
    const lab = await trellis(['lab', 'up', '--format', 'json']);
    expect(lab.code).to.equal(2);
    expect(lab.stderr.split('\n')[0]).to.equal('Error: Unknown argument: format');
  });

  it('a daemon flag given twice exits 2 naming it (a repeatable one is fine)', async () => {
    const server = await trellis([
      'server',
      '--data-dir',
      '/nonexistent',
      '--log-level',
      'info',
      '--log-level',
      'warn',
    ]);
    expect(server.code).to.equal(2);
    expect(server.stderr.split('\n')[0]).to.equal(
      'Error: --log-level was given 2 times; give it once',
    );
    const proxy = await trellis(['proxy', '--socket', '/nonexistent/a', '--socket', '/b']);
    expect(proxy.code).to.equal(2);
    expect(proxy.stderr.split('\n')[0]).to.equal('Error: --socket was given 2 times; give it once');
    // --server is repeatable: the agent gets past this check to the next (a bad duration).
    const agent = await trellis([
      'agent',
      '--server',
      '127.0.0.1:1',
      '--server',
      '127.0.0.1:2',
      '--drain-timeout',
      'bogus',
    ]);
    expect(agent.code).to.equal(2);
    expect(agent.stderr.split('\n')[0]).to.equal(
      'Error: --drain-timeout must be a duration such as 30s or 1m30s, not bogus',
    );
  });

  it('a data dir that cannot be made exits 1 naming it, at once (it spun under /proc before)', async function () {
    if (!existsSync('/proc/self')) {
      console.log('      skipped: no /proc here');
      return this.skip();
    }
    for (const argv of [
      ['server', '--data-dir', '/proc/nonexistent/x', '--bind', '127.0.0.1:0'],
      ['agent', '--data-dir', '/proc/nonexistent/x', '--server', '127.0.0.1:1'],
    ]) {
      const r = await trellis(argv);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr.split('\n')[0]).to.match(
        /^Error: --data-dir \/proc\/nonexistent\/x: cannot create it \(ENOENT: /,
      );
    }
  });

  it('trellis --version prints the package version', async () => {
    const r = await trellis(['--version']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^\d+\.\d+\.\d+\S*\n$/);
  });
});
