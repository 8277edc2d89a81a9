/**
 * The Debian package built from this checkout (scripts/package-deb.mjs over the compiled dist/
 * and node_modules), once per version per test process: five test files install it, and each
 * build takes about 13 s. Callers get a path they must not modify or delete; it is removed
 * when the process exits.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const built = new Map<string, string>();
let dir: string | undefined;

/** The path of trellis_<version>_all.deb (default: package.json's version), built on first use. */
export function debPackage(version = currentVersion()): string {
  const have = built.get(version);
  if (have !== undefined) return have;
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'trellis-test-deb-'));
    dir = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  const out = join(dir, `trellis_${version}_all.deb`);
  const r = spawnSync(
    process.execPath,
    ['scripts/package-deb.mjs', '--version', version, '--out', out],
    {
      cwd: REPO,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`package-deb.mjs failed: ${r.stderr}${r.stdout}`);
  built.set(version, out);
  return out;
}

/** package.json's version: what the package is built as when no version is given. */
export function currentVersion(): string {
  return (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string })
    .version;
}
