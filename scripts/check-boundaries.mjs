#!/usr/bin/env node
// Checks the import boundaries between top-level modules that docs/architecture.md describes.
// A rule lists, for files under a folder, which of our folders they may import from.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');
const ALLOWED = {
  core: [],
  api: ['core'],
  policy: ['core'],
  config: ['core', 'api', 'policy'],
  telemetry: ['core'],
  pki: ['core'],
  httpkit: ['core', 'api'],
  client: ['core', 'api'],
  catalog: ['core', 'api', 'policy', 'config', 'telemetry', 'httpkit', 'pki'],
  agent: ['core', 'api', 'policy', 'config', 'telemetry', 'httpkit', 'client', 'proxy', 'pki'],
  proxy: ['core', 'policy', 'telemetry', 'pki'],
  cli: ['core', 'api', 'config', 'client', 'pki'],
  lab: ['core'], // spawns the trellis binary; never imports agent or catalog
  bin: null, // composition roots may import anything
};
// Pure modules: no I/O.
const NO_IO = new Set(['api', 'policy']);
const IO_MODULES = /^node:(fs|net|tls|http|https|http2|child_process|dgram)/;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
for (const file of files(SRC)) {
  const mod = relative(SRC, file).split('/')[0];
  const allowed = ALLOWED[mod];
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
    const spec = m[1];
    if (NO_IO.has(mod) && IO_MODULES.test(spec))
      problems.push(`${relative('.', file)}: ${mod} must do no I/O but imports ${spec}`);
    if (!spec.startsWith('.')) continue;
    const target = relative(SRC, resolve(dirname(file), spec)).split('/')[0];
    if (target === mod || allowed === null) continue;
    if (allowed === undefined)
      problems.push(`${relative('.', file)}: module "${mod}" has no boundary rule`);
    else if (!allowed.includes(target))
      problems.push(`${relative('.', file)}: ${mod} may not import ${target} (${spec})`);
  }
}
if (problems.length) {
  console.error(`Import boundary violations:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('import boundaries: ok');
