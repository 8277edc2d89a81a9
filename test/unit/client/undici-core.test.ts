import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as undici from 'undici';
import { Agent, buildConnector } from '../../../src/client/undici-core.js';

// src/client/undici-core.ts loads undici's classes by their file paths (to skip the index's
// fetch, WebSocket and caches); an undici upgrade that moves them must fail here, not in use.
describe('client/undici-core', () => {
  it('is the same Agent and buildConnector that undici exports', () => {
    expect(Agent).to.equal(undici.Agent);
    expect(buildConnector).to.equal(undici.buildConnector);
  });

  it("gives an Agent undici's request method without loading undici's index", () => {
    // A fresh process: here the index is already loaded (by the import above).
    const core = fileURLToPath(new URL('../../../src/client/undici-core.js', import.meta.url));
    const script =
      `const { createRequire } = await import('node:module');` +
      `const { Agent } = await import(${JSON.stringify(core)});` +
      `const a = new Agent();` +
      `const cache = Object.keys(createRequire(import.meta.url).cache);` +
      `console.log(JSON.stringify({ request: typeof a.request, index: cache.some((f) => /undici[\\\\/]index\\.js$/.test(f)) }));` +
      `await a.close();`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).to.deep.equal({ request: 'function', index: false });
  });
});
