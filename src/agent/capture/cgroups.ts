/**
 * Capture cgroups: nft's `socket cgroupv2` match resolves its path below /sys/fs/cgroup to
 * the cgroup's id (its inode) when the rules are loaded. So the agent needs to know whether
 * the cgroup exists now (a unit that is not running has none, and nothing to capture) and its
 * inode (a restarted unit gets a new cgroup: the rules must be loaded again).
 */
import { stat } from 'node:fs/promises';

const ROOT = '/sys/fs/cgroup';

/** The cgroup's inode, or undefined when it does not exist. Throws without cgroup v2 at ROOT. */
export async function cgroupInode(path: string): Promise<number | undefined> {
  try {
    await stat(`${ROOT}/cgroup.controllers`);
  } catch {
    throw new Error(
      `capture_cgroup "${path}": cgroup v2 is not mounted at ${ROOT} (nft's socket cgroupv2 match needs it); use capture_user on this host`,
    );
  }
  try {
    return (await stat(`${ROOT}/${path}`)).ino;
  } catch {
    return undefined;
  }
}
