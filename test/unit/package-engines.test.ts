/**
 * Every package `npm ci` installs runs on the oldest Node.js we support (package.json's
 * engines), so the install is clean: no EBADENGINE warning. A dependency of a dependency that
 * moves to a newer Node needs an "overrides" entry in package.json.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface LockPackage {
  version?: string;
  engines?: { node?: string };
}

// semver comes with npm's own tree (fastify depends on it); typed here for the one call used.
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

describe('package-lock.json', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  const oldest = semver.minVersion(pkg.engines.node)?.version ?? '';

  it('names an oldest supported Node.js 20', () => {
    expect(oldest).to.match(/^20\./);
  });

  it('holds no package that wants a newer Node.js than the oldest we support', () => {
    const wantsNewer = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.engines?.node !== undefined)
      .filter(([, p]) => !semver.satisfies(oldest, p.engines!.node!))
      .map(([path, p]) => `${path}@${p.version}: node ${p.engines!.node}`);
    expect(wantsNewer).to.deep.equal([]);
  });
});
