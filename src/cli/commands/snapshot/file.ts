/** Reading and checking a snapshot file, and writing one so that it is whole or absent. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { decodeSnapshotFile, isSnapshotProblem, type DecodedSnapshot } from '../../../api/index.js';
import { badRequest, describeError } from '../../../core/index.js';
import type { CommandEnv } from '../../context.js';

/** Reads FILE and checks it is an intact snapshot; a bad file is a usage error naming it. */
export async function readSnapshotFile(
  env: CommandEnv,
  file: string,
): Promise<{ bytes: Buffer; decoded: DecodedSnapshot }> {
  let bytes: Buffer;
  try {
    bytes = await env.deps.readFile(file);
  } catch (err) {
    throw badRequest(`${file}: cannot read the file: ${describeError(err)}`);
  }
  const decoded = decodeSnapshotFile(bytes);
  if (isSnapshotProblem(decoded)) throw badRequest(`${file}: ${decoded.error}`);
  return { bytes, decoded };
}

/** A temp file beside FILE (mode 0600, fsynced), then renamed over it. */
export async function writeFileAtomically(file: string, bytes: Buffer): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const f = await open(tmp, 'wx', 0o600);
    try {
      await f.writeFile(bytes);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw badRequest(`${file}: cannot write the snapshot: ${describeError(err)}`);
  }
}
