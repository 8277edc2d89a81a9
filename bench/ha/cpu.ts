/**
 * CPU of each party (Trellis servers, etcd members, this client process) while something runs,
 * in % of one core over the wall-clock time: 100% is one core busy, and the machine has as
 * many cores as the header of docs/benchmarks.md says, shared by everyone here.
 */
import { now } from '../lib/time.js';

export interface HaCpu {
  trellis: number;
  /** Absent for the embedded store (no etcd runs). */
  etcd?: number;
  client: number;
}

export interface CpuSources {
  trellisMs(): number;
  etcdMs?: () => number;
}

export async function measureHaCpu<T>(
  src: CpuSources,
  fn: () => Promise<T>,
): Promise<{ value: T; cpu: HaCpu }> {
  const t0 = now();
  const trellis0 = src.trellisMs();
  const etcd0 = src.etcdMs?.();
  const client0 = process.cpuUsage();
  const value = await fn();
  const wall = now() - t0;
  const client = process.cpuUsage(client0);
  const pct = (msUsed: number): number => (msUsed / wall) * 100;
  const cpu: HaCpu = {
    trellis: pct(src.trellisMs() - trellis0),
    client: pct((client.user + client.system) / 1000),
  };
  if (src.etcdMs && etcd0 !== undefined) cpu.etcd = pct(src.etcdMs() - etcd0);
  return { value, cpu };
}
