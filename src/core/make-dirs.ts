/**
 * `mkdir -p` that cannot hang. Node 20's recursive mkdirSync loops for ever on some paths it
 * cannot create (any path under /proc: mkdir there keeps answering ENOENT for the parent it
 * just "made"), so a daemon given `--data-dir /proc/x` spun at full CPU instead of exiting.
 * This walks up to the deepest existing ancestor and creates each missing level once, so a
 * failure is an error naming the level that could not be made.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeDirs(path: string, mode: number): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ;) {
    try {
      if (!statSync(dir).isDirectory())
        throw Object.assign(new Error(`${dir} exists and is not a directory`), {
          code: 'ENOTDIR',
        });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.push(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]!, { mode });
    } catch (err) {
      // Made meanwhile by someone else: fine, as with mkdir -p.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** makeDirs for a directory an operator named: a failure says which setting and why. */
export function makeConfiguredDir(path: string, mode: number, setting: string): void {
  try {
    makeDirs(path, mode);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`${setting} ${path}: cannot create it (${e.message})`);
  }
}
