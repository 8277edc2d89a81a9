/** The unix users the lab runs its processes as (system users, no home, no login shell). */
import { run, succeeds } from './sys.js';

export interface UnixIds {
  uid: number;
  gid: number;
}

export function userExists(name: string): Promise<boolean> {
  return succeeds('id', ['-u', name]);
}

export async function userIds(name: string): Promise<UnixIds> {
  const uid = Number((await run('id', ['-u', name])).stdout.trim());
  const gid = Number((await run('id', ['-g', name])).stdout.trim());
  return { uid, gid };
}

export async function createUser(name: string): Promise<void> {
  await run('useradd', [
    '--system',
    '--user-group',
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    name,
  ]);
}

/** Deletes a user (and its group); one that is already gone is fine. */
export async function deleteUser(name: string): Promise<void> {
  if (!(await userExists(name))) return;
  await run('userdel', [name]);
}
