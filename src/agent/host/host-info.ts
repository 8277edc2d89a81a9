/**
 * What `GET /v1/agent/host` answers: the host's memory, CPUs, OS and root disk, in Consul's
 * shape (`Memory`, `CPU`, `Host`, `Disk`, `CollectionTime`, `Errors`). Consul fills it from
 * gopsutil; here it comes from /proc, /etc/os-release, node:os and statfs. A part that cannot
 * be read is left empty and its reason added to `Errors`, rather than failing the request.
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import { cpus, hostname, machine, release, totalmem, freemem, uptime } from 'node:os';
import { describeError } from '../../core/index.js';
import {
  parseCpuinfo,
  parseMeminfo,
  parseOsRelease,
  type CpuInfo,
  type MemoryStat,
} from './proc-parsers.js';

export interface HostInfo {
  Memory: MemoryStat | null;
  CPU: CpuInfo[] | null;
  Host: Record<string, string | number> | null;
  Disk: Record<string, string | number> | null;
  /** Unix time in nanoseconds, as Consul sends it. */
  CollectionTime: number;
  Errors: string[];
}

/** Consul reports the disk holding `/`. */
const DISK_PATH = '/';

export async function collectHostInfo(nowMs: number): Promise<HostInfo> {
  const errors: string[] = [];
  const attempt = async <T>(what: string, f: () => Promise<T>): Promise<T | null> => {
    try {
      return await f();
    } catch (err) {
      errors.push(`${what}: ${describeError(err)}`);
      return null;
    }
  };
  const [memory, cpu, host, disk] = await Promise.all([
    attempt('memory', memoryStat),
    attempt('cpu', cpuStat),
    attempt('host', () => hostStat(nowMs)),
    attempt('disk', diskStat),
  ]);
  return {
    Memory: memory,
    CPU: cpu,
    Host: host,
    Disk: disk,
    CollectionTime: nowMs * 1e6,
    Errors: errors,
  };
}

async function memoryStat(): Promise<MemoryStat> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => undefined);
  if (text !== undefined) return parseMeminfo(text);
  // Not Linux: what node:os knows.
  const total = totalmem();
  const free = freemem();
  return {
    total,
    available: free,
    free,
    used: total - free,
    usedPercent: total > 0 ? ((total - free) / total) * 100 : 0,
  };
}

async function cpuStat(): Promise<CpuInfo[]> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => undefined);
  const parsed = text === undefined ? [] : parseCpuinfo(text);
  if (parsed.length > 0) return parsed;
  return cpus().map((c, i) => ({
    cpu: i,
    vendorId: '',
    family: '',
    model: '',
    stepping: 0,
    physicalId: '',
    coreId: '',
    cores: 1,
    modelName: c.model,
    mhz: c.speed,
    cacheSize: 0,
    flags: [],
    microcode: '',
  }));
}

async function hostStat(nowMs: number): Promise<Record<string, string | number>> {
  const up = Math.floor(uptime());
  const osRelease = parseOsRelease(await readFile('/etc/os-release', 'utf8').catch(() => ''));
  const procs = await readdir('/proc').then(
    (names) => names.filter((n) => /^\d+$/.test(n)).length,
    () => 0,
  );
  const hostId = (await readFile('/etc/machine-id', 'utf8').catch(() => '')).trim();
  return {
    hostname: hostname(),
    uptime: up,
    bootTime: Math.floor(nowMs / 1000) - up,
    procs,
    os: process.platform,
    platform: osRelease.ID ?? '',
    platformFamily: osRelease.ID_LIKE?.split(' ')[0] ?? osRelease.ID ?? '',
    platformVersion: osRelease.VERSION_ID ?? '',
    kernelVersion: release(),
    kernelArch: machine(),
    virtualizationSystem: '',
    virtualizationRole: '',
    hostId,
  };
}

async function diskStat(): Promise<Record<string, string | number>> {
  const s = await statfs(DISK_PATH);
  const total = s.blocks * s.bsize;
  const free = s.bavail * s.bsize;
  const used = (s.blocks - s.bfree) * s.bsize;
  const inodesUsed = s.files - s.ffree;
  return {
    path: DISK_PATH,
    fstype: fsTypeName(s.type),
    total,
    free,
    used,
    // As gopsutil (and df): used over what is usable by non-root users.
    usedPercent: used + free > 0 ? (used / (used + free)) * 100 : 0,
    inodesTotal: s.files,
    inodesUsed,
    inodesFree: s.ffree,
    inodesUsedPercent: s.files > 0 ? (inodesUsed / s.files) * 100 : 0,
  };
}

/** The common Linux file system magic numbers (statfs f_type) by name. */
const FS_TYPES: Record<number, string> = {
  0xef53: 'ext2/ext3',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x6969: 'nfs',
  0x2fc12fc1: 'zfs',
  0xf2f52010: 'f2fs',
};

function fsTypeName(type: number): string {
  return FS_TYPES[type] ?? `0x${type.toString(16)}`;
}
