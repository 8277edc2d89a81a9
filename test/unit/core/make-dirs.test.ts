import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeConfiguredDir, makeDirs } from '../../../src/core/make-dirs.js';

describe('core/makeDirs: mkdir -p that cannot hang', () => {
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'make-dirs-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('makes every missing level with the mode, and is a no-op when they exist', () => {
    const deep = join(dir, 'a', 'b', 'c');
    makeDirs(deep, 0o700);
    expect(statSync(deep).isDirectory()).to.equal(true);
    expect(statSync(join(dir, 'a')).mode & 0o777).to.equal(0o700);
    makeDirs(deep, 0o700);
  });

  it('refuses a path through a file, naming the code', () => {
    writeFileSync(join(dir, 'f'), 'x');
    expect(() => makeDirs(join(dir, 'f', 'x'), 0o700))
      .to.throw()
      .with.property('code', 'ENOTDIR');
    expect(() => makeDirs(join(dir, 'f'), 0o700)).to.throw(/exists and is not a directory/);
  });

  it('fails at once under /proc, where recursive mkdirSync loops for ever', function () {
    if (process.platform !== 'linux') return this.skip();
    expect(() => makeConfiguredDir('/proc/nonexistent/x', 0o700, '--data-dir')).to.throw(
      /^--data-dir \/proc\/nonexistent\/x: cannot create it \(ENOENT: /,
    );
  });
});
