/**
 * The playbook parses and ansible-lint (Debian's package) passes with the production profile.
 * Needs ansible-playbook and ansible-lint (DEB_PACKAGES in .ci/run); skipped without them.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const ANSIBLE_DIR = join(REPO, 'ansible');

function runs(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
}

function run(argv: string[]): { status: number | null; output: string } {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 180_000,
    env: {
      ...process.env,
      ANSIBLE_NOCOLOR: '1',
      NO_COLOR: '1',
      ANSIBLE_CONFIG: join(ANSIBLE_DIR, 'ansible.cfg'),
    },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('ansible/ playbook and roles (lint)', function () {
  this.timeout(240_000);

  it('passes ansible-playbook --syntax-check with the example inventory', function () {
    if (!runs('ansible-playbook')) this.skip();
    const r = run([
      'ansible-playbook',
      '--syntax-check',
      join(ANSIBLE_DIR, 'site.yml'),
      '-i',
      join(ANSIBLE_DIR, 'inventory.example.ini'),
    ]);
    expect(r.output).to.include('playbook: ');
    expect(r.status, r.output).to.equal(0);
  });

  it('passes ansible-lint with the production profile', function () {
    if (!runs('ansible-lint')) this.skip();
    const r = run([
      'ansible-lint',
      '--profile',
      'production',
      '-c',
      join(ANSIBLE_DIR, '.ansible-lint'),
      'ansible/',
    ]);
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.match(/Passed with production profile/);
  });
});
