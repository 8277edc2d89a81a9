#!/usr/bin/env node
// Builds dist/trellis_<version>_all.deb from this checkout with dpkg-deb, without network access:
// the compiled JavaScript (dist/src, after `npm run build`), and the production dependencies
// copied from the checkout's node_modules (after `npm ci`). Which packages are production ones
// is read from package-lock.json: every entry not marked `dev`, exactly the set
// `npm ci --omit=dev` would install, but taken from the tree that the tests ran against rather
// than fetched again (no registry, no npm cache, no install scripts run).
//
//   node scripts/package-deb.mjs [--version 0.1.0] [--out dist/trellis_0.1.0_all.deb]
//
// --version overrides package.json's version (the upgrade test builds an "older" package).
// The layout is described in docs/deploy.md ("The Debian package"); other tools rely on it.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = 'usr/lib/trellis';

function fail(message) {
  process.stderr.write(`package-deb: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === '--version' || flag === '--out') && value !== undefined && !value.startsWith('--')) {
      out[flag.slice(2)] = value;
      i++;
    } else {
      fail(`unknown or incomplete argument ${JSON.stringify(flag)} (use --version V, --out FILE)`);
    }
  }
  return out;
}

/** A Debian version: digits first, then the characters policy allows (no epoch, no revision). */
function checkVersion(v) {
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(v)) fail(`version ${JSON.stringify(v)} is not a Debian upstream version`);
  return v;
}

function writeFile(root, path, text, mode = 0o644) {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, text);
  chmodSync(file, mode);
}

/** Copies a file with a normalized mode: 0755 if any execute bit was set, else 0644. */
function copyFile(from, to) {
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  copyFileSync(from, to);
  chmodSync(to, statSync(from).mode & 0o111 ? 0o755 : 0o644);
}

/** Copies a directory tree; `keep(relPath, isDir)` decides. Symlinks are refused (none expected). */
function copyTree(from, to, keep) {
  mkdirSync(to, { recursive: true, mode: 0o755 });
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const st = lstatSync(src);
    if (st.isSymbolicLink()) fail(`unexpected symlink ${relative(REPO, src)}`);
    if (!keep(name, st.isDirectory())) continue;
    if (st.isDirectory()) copyTree(src, join(to, name), keep);
    else copyFile(src, join(to, name));
  }
}

/**
 * Production packages whose install script makes nothing the package would need, checked by
 * reading it: protobufjs (etcd3 -> @grpc/proto-loader) only prints a warning when a dependent
 * names it with another version scheme.
 */
const HARMLESS_INSTALL_SCRIPTS = new Set(['protobufjs']);

/** The production packages of the lock file, checked against what is installed. */
function productionPackages() {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8'));
  if (lock.lockfileVersion < 2) fail('package-lock.json must be lockfileVersion 2 or later');
  const paths = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev) continue;
    if (entry.link) fail(`${path} is a link; the package cannot hold it`);
    if (entry.hasInstallScript && !HARMLESS_INSTALL_SCRIPTS.has(path.replace(/^.*node_modules\//, '')))
      fail(`${path} runs an install script; the package would lack its output`);
    const manifest = join(REPO, path, 'package.json');
    if (!existsSync(manifest)) fail(`${path} is missing: run npm ci first`);
    const installed = JSON.parse(readFileSync(manifest, 'utf8')).version;
    if (installed !== entry.version) {
      fail(`${path} is ${installed}, package-lock.json says ${entry.version}: run npm ci first`);
    }
    paths.push(path);
  }
  return paths;
}

function walk(root, dir = root, out = { files: [], dirs: [] }) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      out.dirs.push(p);
      walk(root, p, out);
    } else out.files.push(p);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
const version = checkVersion(args.version ?? manifest.version);
const out = resolve(args.out ?? join(REPO, 'dist', `trellis_${version}_all.deb`));
if (!existsSync(join(REPO, 'dist/src/bin/trellis.js'))) fail('dist/src is missing: run npm run build first');
if (spawnSync('dpkg-deb', ['--version']).error) fail('dpkg-deb is missing (Debian package dpkg)');

const staging = mkdtempSync(join(tmpdir(), 'trellis-deb-'));
const root = join(staging, 'root');
try {
  // /usr/lib/trellis: package.json (what `trellis --version` reads, and "type": "module"),
  // the compiled JavaScript without source maps or tests, the production node_modules.
  const shipped = {
    name: manifest.name,
    version,
    description: manifest.description,
    type: manifest.type,
    license: manifest.license,
    engines: manifest.engines,
    bin: manifest.bin,
    dependencies: manifest.dependencies,
  };
  writeFile(root, `${PREFIX}/package.json`, `${JSON.stringify(shipped, null, 2)}\n`);
  copyTree(join(REPO, 'dist/src'), join(root, PREFIX, 'dist/src'), (name, isDir) => isDir || name.endsWith('.js'));
  for (const pkg of productionPackages()) {
    // Each lock entry brings its own directory; nested node_modules come as their own entries.
    copyTree(join(REPO, pkg), join(root, PREFIX, pkg), (name, isDir) => !(isDir && name === 'node_modules'));
  }

  writeFile(
    root,
    'usr/bin/trellis',
    '#!/bin/sh\n# Trellis command line, from the Debian package.\nexec /usr/bin/node /usr/lib/trellis/dist/src/bin/trellis.js "$@"\n',
    0o755,
  );
  for (const unit of readdirSync(join(REPO, 'systemd')).filter((f) => f.endsWith('.service'))) {
    copyFile(join(REPO, 'systemd', unit), join(root, 'lib/systemd/system', unit));
  }
  copyTree(join(REPO, 'deploy/debian/default'), join(root, 'etc/default'), () => true);
  mkdirSync(join(root, 'etc/trellis.d'), { recursive: true, mode: 0o755 });

  const doc = join(root, 'usr/share/doc/trellis');
  copyFile(join(REPO, 'README.md'), join(doc, 'README.md'));
  copyTree(join(REPO, 'docs'), join(doc, 'docs'), (name, isDir) => isDir || name.endsWith('.md'));
  copyFile(join(REPO, 'deploy/debian/copyright'), join(doc, 'copyright'));

  // Every directory 0755 (mkdtemp and the umask may have made them otherwise).
  const tree = walk(root);
  chmodSync(root, 0o755);
  for (const d of tree.dirs) chmodSync(d, 0o755);

  const conffiles = readdirSync(join(root, 'etc/default')).map((f) => `/etc/default/${f}`);
  const installedKiB =
    tree.files.reduce((sum, f) => sum + Math.ceil(statSync(f).size / 1024), 0) + tree.dirs.length;
  const md5sums = tree.files
    .filter((f) => !conffiles.includes(`/${relative(root, f)}`))
    .map((f) => `${createHash('md5').update(readFileSync(f)).digest('hex')}  ${relative(root, f)}`)
    .sort()
    .join('\n');

  const control = [
    'Package: trellis',
    `Version: ${version}`,
    'Architecture: all',
    'Maintainer: Trellis maintainers <maintainers@users.noreply.r-seed-d00ebbe5.example>',
    `Installed-Size: ${installedKiB}`,
    'Depends: nodejs (>= 20), nftables, adduser',
    'Section: net',
    'Priority: optional',
    'Description: service mesh for virtual machines and bare metal',
    ' Trellis is a service mesh for hosts run by systemd: a Consul-compatible',
    ' catalog and certificate authority (trellis-server), and a per-host agent',
    ' (trellis-agent) with mTLS sidecar proxies and nftables interception.',
    ' .',
    ' The units are installed but not enabled or started: configure',
    ' /etc/trellis.d and /etc/default/trellis-* first (see',
    ' /usr/share/doc/trellis/docs/deploy.md).',
    '',
  ].join('\n');
  const debian = join(root, 'DEBIAN');
  writeFile(root, 'DEBIAN/control', control);
  writeFile(root, 'DEBIAN/conffiles', `${conffiles.join('\n')}\n`);
  writeFile(root, 'DEBIAN/md5sums', `${md5sums}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    const text = readFileSync(join(REPO, 'deploy/debian', script), 'utf8').replaceAll('@VERSION@', version);
    writeFile(root, `DEBIAN/${script}`, text, 0o755);
  }
  chmodSync(debian, 0o755);

  mkdirSync(dirname(out), { recursive: true });
  const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, out], { encoding: 'utf8' });
  if (r.status !== 0) fail(`dpkg-deb failed: ${(r.stderr || r.stdout).trim()}`);
  process.stdout.write(`${out}\n`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
