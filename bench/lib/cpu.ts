/**
 * CPU used by the server and by this (client) process while something runs, as a percentage
 * of one core over the wall-clock time. On a machine where client and server share the cores,
 * this tells whether either side was saturated or both were waiting (for the disk, say).
 */
import { now } from './time.js';

export interface CpuShare {
  /** Server CPU time / wall time, in % of one core. */
  server: number;
  /** This process's CPU time / wall time, in % of one core. */
  client: number;
}

export async function measureCpu<T>(
  serverCpuMs: () => number,
  fn: () => Promise<T>,
): Promise<{ value: T; cpu: CpuShare }> {
  const s0 = serverCpuMs();
  const c0 = process.cpuUsage();
  const t0 = now();
  const value = await fn();
  const wall = now() - t0;
  const c = process.cpuUsage(c0);
  const server = serverCpuMs() - s0;
  return {
    value,
    cpu: { server: (server / wall) * 100, client: ((c.user + c.system) / 1000 / wall) * 100 },
  };
}
