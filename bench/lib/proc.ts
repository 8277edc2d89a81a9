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

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ) on every common arch. */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are at 11 and 12 counted from field 3.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / TICKS_PER_SECOND;
}
