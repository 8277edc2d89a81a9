/**
 * Unix user names to uids through NSS (`getent passwd`), so LDAP or systemd-homed users work
 * the same as /etc/passwd ones. A numeric name is a uid as it is.
 */
import { execFile } from 'node:child_process';

/** The uid of a user, or undefined when the host has no such user. */
export function lookupUid(user: string): Promise<number | undefined> {
  if (/^\d+$/.test(user)) return Promise.resolve(Number(user));
  return new Promise((resolve, reject) => {
    execFile('getent', ['passwd', user], { timeout: 5000, encoding: 'utf8' }, (err, stdout) => {
      // getent exits 2 for "no such key".
      if (err && (err as { code?: unknown }).code === 2) return resolve(undefined);
      if (err) return reject(new Error(`looking up user "${user}": ${err.message}`));
      const uid = Number(stdout.split(':')[2]);
      resolve(Number.isInteger(uid) ? uid : undefined);
    });
  });
}
