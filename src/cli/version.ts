/** The version of trellis, from the package.json it was installed with. */
import { readFileSync } from 'node:fs';

// dist/src/cli/version.js -> the package root, in a checkout and in an installed package.
const manifest = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
) as { version?: unknown };

export const version = typeof manifest.version === 'string' ? manifest.version : 'unknown';
