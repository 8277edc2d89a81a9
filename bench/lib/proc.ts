/** Facts about processes read from /proc (Linux only). */
import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size, bytes. */
  peakRss: number;
}

function kibField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** VmRSS and VmHWM of a process from /proc/<pid>/status. */
export function processMemory(pid: number): ProcessMemory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: kibField(text, 'VmRSS'), peakRss: kibField(text, 'VmHWM') };
}

/** The soft limit on open files of this process (children inherit it); Infinity if unlimited. */
export function openFileLimit(): number {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return Number.POSITIVE_INFINITY;
  return Number(m[1]);
}
