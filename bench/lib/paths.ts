/** Locations in the project, resolved from this compiled file (dist/bench/lib/paths.js). */
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TRELLIS_BIN = fileURLToPath(new URL('../../src/bin/trellis.js', import.meta.url));
export const GC_PRELOAD_URL = new URL('./gc-preload.js', import.meta.url).href;
export const REPORT_PATH = fileURLToPath(new URL('../../../docs/benchmarks.md', import.meta.url));
