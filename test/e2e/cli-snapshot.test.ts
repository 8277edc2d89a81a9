/**
 * `trellis snapshot save|restore|inspect` as an operator runs them (real CLI processes against a
 * real `trellis server`): the file is written mode 0600 and the index printed; restore brings the
 * state back; bad files, missing files, missing tokens give one line and a non-zero exit.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrap, call, fingerprint, scramble, seed } from '../helpers/snapshot-api.js';
import {
  TRELLIS_BIN,
  startServerProcess,
  tempDirs,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<CliResult> {
  const env = { ...process.env };
  delete env.TRELLIS_HTTP_ADDR;
  delete env.TRELLIS_HTTP_TOKEN;
  const proc = spawn(process.execPath, [TRELLIS_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('trellis snapshot CLI', function () {
  this.timeout(120_000);
  const dirs = tempDirs();
  let server: TrellisProcess | undefined;
  let token = '';
  let work = '';
  let saved: unknown;
  const flags = (): string[] => ['--http-addr', server!.address, '--token', token];

  before(async () => {
    server = await startServerProcess(dirs.make('cli-snap-server'), 'cli-snap');
    work = dirs.make('cli-snap-files');
    token = await bootstrap(server.address);
    await seed(server.address, token);
    saved = await fingerprint(server.address, token);
  });

  after(async () => {
    await server?.stop();
    dirs.removeAll();
  });

  it('save writes the file with mode 0600, leaves no temp file and prints the index', async () => {
    const file = join(work, 'backup.snap');
    const r = await cli(['snapshot', 'save', file, ...flags()]);
    expect(r.code, r.stderr).to.equal(0);
    const m = /^Saved snapshot at index (\d+) to (.+)\n$/.exec(r.stdout);
    expect(m, r.stdout).to.not.equal(null);
    expect(Number(m![1])).to.be.greaterThan(0);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(readdirSync(work)).to.deep.equal(['backup.snap']);
  });

  it('inspect prints the index and counts', async () => {
    const r = await cli(['snapshot', 'inspect', join(work, 'backup.snap')]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Index\s+\d+$/m);
    expect(r.stdout).to.match(/^Datacenter\s+dc1$/m);
    expect(r.stdout).to.match(/^Nodes\s+2$/m); // the server's own node and web-host
    expect(r.stdout).to.match(/^KV keys\s+2$/m);
  });

  it('restore brings the saved state back and prints the new index', async () => {
    await scramble(server!.address, token);
    const r = await cli(['snapshot', 'restore', join(work, 'backup.snap'), ...flags()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(
      /^Restored snapshot of index \d+ from .+; the catalog continues at index \d+\n$/,
    );
    expect(await fingerprint(server!.address, token)).to.deep.equal(saved);
  });

  it('a damaged file: one line naming the file and the problem, exit 2, nothing sent', async () => {
    const bad = join(work, 'bad.snap');
    writeFileSync(bad, 'not a snapshot');
    const before = (await call(server!.address, 'GET', '/v1/kv/app/color', { token })).index;
    const r = await cli(['snapshot', 'restore', bad, ...flags()]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/^Error: .*bad\.snap: the file is not a Trellis snapshot/);
    expect((await call(server!.address, 'GET', '/v1/kv/app/color', { token })).index).to.equal(
      before,
    );
    const insp = await cli(['snapshot', 'inspect', bad]);
    expect(insp.code).to.equal(2);
    expect(insp.stderr).to.match(/bad\.snap: the file is not a Trellis snapshot/);
  });

  it('a missing file: exit 2 naming the file', async () => {
    const r = await cli(['snapshot', 'restore', join(work, 'nope.snap'), ...flags()]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/^Error: .*nope\.snap: cannot read the file/);
  });

  it('without a management token: exit 1 with the permission error, no file written', async () => {
    const file = join(work, 'denied.snap');
    const r = await cli(['snapshot', 'save', file, '--http-addr', server!.address]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^Error: GET \/v1\/snapshot failed with HTTP 403: Permission denied/);
    expect(existsSync(file)).to.equal(false);
  });

  it('a file of another datacenter is refused by the server: exit 2 with its message', async () => {
    const { encodeSnapshotFile } = await import('../../src/api/index.js');
    const other = join(work, 'other-dc.snap');
    writeFileSync(other, encodeSnapshotFile(Buffer.from('{}'), { index: 1, datacenter: 'dc9' }));
    const r = await cli(['snapshot', 'restore', other, ...flags()]);
    expect(r.code).to.equal(2);
    expect(r.stderr, r.stderr).to.match(
      /HTTP 400: the snapshot is of datacenter "dc9", this cluster is datacenter "dc1"/,
    );
  });
});
