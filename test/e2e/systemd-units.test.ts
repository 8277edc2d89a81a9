/**
 * The unit files in systemd/ as systemd reads them: `systemd-analyze verify` on each, failing on
 * any warning (systemd drops a bad line with a warning and still exits 0). verify also checks
 * that ExecStart's program exists, so each unit is verified twice: as shipped (/usr/bin/env),
 * and as a copy whose ExecStart names this machine's node and this checkout's trellis.js.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TRELLIS_BIN, removeDir, tempDir } from '../helpers/trellis-process.js';

const UNIT_DIR = resolve('systemd');
const REPO = resolve('.');

function verify(file: string): { code: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** The Environment= lines of a unit. */
function environmentLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('Environment='));
}

describe('systemd units', function () {
  this.timeout(60_000);
  const units = readdirSync(UNIT_DIR).filter((f) => f.endsWith('.service'));
  let dir: string;

  before(function () {
    if (spawnSync('systemd-analyze', ['--version']).error) {
      throw new Error('systemd-analyze is missing: install the systemd package (.ci/run does)');
    }
    expect(existsSync(TRELLIS_BIN), 'run npm run build first').to.equal(true);
    dir = tempDir('units');
  });
  after(() => removeDir(dir));

  it('ships the server and the agent unit', () => {
    expect(units).to.include.members(['trellis-server.service', 'trellis-agent.service']);
  });

  for (const unit of ['trellis-server.service', 'trellis-agent.service']) {
    it(`${unit}: systemd-analyze verify passes with no warning, as shipped`, () => {
      const r = verify(join(UNIT_DIR, unit));
      expect(r.output, r.output).to.equal('');
      expect(r.code).to.equal(0);
    });

    it(`${unit}: verify passes with ExecStart pointed at the real node and trellis.js`, () => {
      const text = readFileSync(join(UNIT_DIR, unit), 'utf8');
      expect(text).to.contain('ExecStart=/usr/bin/env node /opt/trellis/dist/src/bin/trellis.js');
      const copy = join(dir, unit);
      writeFileSync(
        copy,
        text.replace('/usr/bin/env node', process.execPath).replaceAll('/opt/trellis/', `${REPO}/`),
      );
      const r = verify(copy);
      expect(r.output, r.output).to.equal('');
      expect(r.code).to.equal(0);
    });
  }

  it('a value with a space is quoted, so systemd keeps all of it', () => {
    // The check verify cannot make: an unquoted `Environment=A=--bind 0.0.0.0:8500` is read as
    // two assignments, and the second one is dropped. verify warns about it (tested above);
    // this says which form the units use, so the next edit keeps it.
    for (const unit of units) {
      for (const line of environmentLines(readFileSync(join(UNIT_DIR, unit), 'utf8'))) {
        const value = line.slice('Environment='.length);
        if (/\s/.test(value)) expect(value, `${unit}: ${line}`).to.match(/^"[^"]*"$/);
      }
    }
  });

  it('verify reports the unquoted form this test guards against', () => {
    const bad = join(dir, 'bad.service');
    writeFileSync(
      bad,
      '[Service]\nEnvironment=ARGS=--bind 0.0.0.0:8500\nExecStart=/usr/bin/env true $ARGS\n',
    );
    expect(verify(bad).output).to.contain('Invalid environment assignment');
  });
});
