/**
 * `trellis dev` starts, stops and fails like a tool a newcomer runs first: a taken port is a
 * one-line error and exit 1 (not a process that hangs on), and its temporary data directory
 * is gone afterwards, whether it failed to start or was stopped with Ctrl-C.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { TRELLIS_BIN, eventually, removeDir, tempDir } from '../helpers/trellis-process.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `trellis dev ...args` with TMPDIR set to `tmp`, so its temporary data dir is made there. */
function dev(args: string[], tmp: string, onStdout?: (text: string) => void) {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.TRELLIS_HTTP_ADDR;
  const proc = spawn(process.execPath, [TRELLIS_BIN, 'dev', ...args, '--log-level', 'warn'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Run = { code: null, signal: null, stdout: '', stderr: '' };
  proc.stdout.on('data', (d: Buffer) => {
    r.stdout += d.toString();
    onStdout?.(r.stdout);
  });
  proc.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  const done = new Promise<Run>((resolve) =>
    proc.once('close', (code, signal) => resolve({ ...r, code, signal })),
  );
  return { proc, done };
}

describe('trellis dev: start, stop, failure', function () {
  this.timeout(90_000);
  let tmp: string;
  let taken: Server;
  let port: number;

  beforeEach(async () => {
    tmp = tempDir('dev-tmp');
    taken = createServer();
    await new Promise<void>((res) => taken.listen(0, '127.0.0.1', res));
    port = (taken.address() as { port: number }).port;
  });
  afterEach(async () => {
    await new Promise((res) => taken.close(res));
    removeDir(tmp);
  });

  it('with its port taken: exits 1 with one line naming the address, and leaves no data dir', async () => {
    const run = dev(['--bind', `127.0.0.1:${port}`], tmp);
    // A hang is the bug: the test's own timeout is the failure, and the process is killed.
    const killer = setTimeout(() => run.proc.kill('SIGKILL'), 60_000);
    const r = await run.done;
    clearTimeout(killer);
    expect(r.signal, 'dev did not exit by itself').to.equal(null);
    expect(r.code).to.equal(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.equal(
      `Error: 127.0.0.1:${port} is already in use (another trellis?): stop it, or pick another address with --bind`,
    );
    expect(readdirSync(tmp)).to.deep.equal([]);
  });

  it('stopped with Ctrl-C (SIGINT): exits 0 and removes its data dir', async () => {
    let ready = false;
    const run = dev(['--bind', '127.0.0.1:0'], tmp, (out) => {
      ready ||= out.includes('trellis dev ready on');
    });
    await eventually(async () => ready, 45_000);
    expect(readdirSync(tmp).filter((f) => f.startsWith('trellis-dev-'))).to.have.length(1);
    run.proc.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).to.equal(0);
    expect(readdirSync(tmp)).to.deep.equal([]);
  });
});
