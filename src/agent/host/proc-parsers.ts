/**
 * Parsers for the Linux files `/v1/agent/host` reads (/proc/meminfo, /proc/cpuinfo,
 * /etc/os-release). Pure: they take the text and return numbers in Consul's field names
 * (gopsutil's JSON names, which is what Consul's answer is made of).
 */

/** gopsutil's VirtualMemoryStat as JSON: bytes, except usedPercent. */
export type MemoryStat = Record<string, number>;

/** meminfo keys (kB) -> Consul's names; the rest Consul reports are not in meminfo. */
const MEMINFO_FIELDS: Record<string, string> = {
  MemTotal: 'total',
  MemAvailable: 'available',
  MemFree: 'free',
  Active: 'active',
  Inactive: 'inactive',
  Buffers: 'buffers',
  Cached: 'cached',
  Writeback: 'writeBack',
  Dirty: 'dirty',
  WritebackTmp: 'writeBackTmp',
  Shmem: 'shared',
  Slab: 'slab',
  SReclaimable: 'sreclaimable',
  SUnreclaim: 'sunreclaim',
  PageTables: 'pageTables',
  SwapCached: 'swapCached',
  CommitLimit: 'commitLimit',
  Committed_AS: 'committedAS',
  HighTotal: 'highTotal',
  HighFree: 'highFree',
  LowTotal: 'lowTotal',
  LowFree: 'lowFree',
  SwapTotal: 'swapTotal',
  SwapFree: 'swapFree',
  Mapped: 'mapped',
  VmallocTotal: 'vmallocTotal',
  VmallocUsed: 'vmallocUsed',
  VmallocChunk: 'vmallocChunk',
  HugePages_Total: 'hugePagesTotal',
  HugePages_Free: 'hugePagesFree',
  Hugepagesize: 'hugePageSize',
};

/** /proc/meminfo -> memory figures in bytes; `used` as gopsutil computes it. */
export function parseMeminfo(text: string): MemoryStat {
  const out: MemoryStat = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (!m) continue;
    const name = MEMINFO_FIELDS[m[1]!];
    if (!name) continue;
    const n = Number(m[2]);
    // HugePages_* are counts; everything else is in kB.
    out[name] = m[1]!.startsWith('HugePages_') ? n : n * 1024;
  }
  const total = out.total ?? 0;
  const free = out.free ?? 0;
  // gopsutil: used = total - free - buffers - cached (cached including reclaimable slab).
  const cached = (out.cached ?? 0) + (out.sreclaimable ?? 0);
  out.cached = cached;
  out.available ??= free + cached + (out.buffers ?? 0);
  out.used = Math.max(0, total - free - (out.buffers ?? 0) - cached);
  out.usedPercent = total > 0 ? (out.used / total) * 100 : 0;
  return out;
}

/** gopsutil's cpu.InfoStat as JSON, one per logical CPU. */
export interface CpuInfo {
  cpu: number;
  vendorId: string;
  family: string;
  model: string;
  stepping: number;
  physicalId: string;
  coreId: string;
  cores: number;
  modelName: string;
  mhz: number;
  cacheSize: number;
  flags: string[];
  microcode: string;
}

/** /proc/cpuinfo -> one entry per `processor` block. */
export function parseCpuinfo(text: string): CpuInfo[] {
  const out: CpuInfo[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) f.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    if (!f.has('processor')) continue;
    const num = (k: string): number => {
      const n = Number.parseFloat(f.get(k) ?? '');
      return Number.isFinite(n) ? n : 0;
    };
    out.push({
      cpu: num('processor'),
      vendorId: f.get('vendor_id') ?? f.get('CPU implementer') ?? '',
      family: f.get('cpu family') ?? '',
      model: f.get('model') ?? '',
      stepping: num('stepping'),
      physicalId: f.get('physical id') ?? '',
      coreId: f.get('core id') ?? '',
      // gopsutil reports 1 per logical CPU on Linux.
      cores: 1,
      modelName: f.get('model name') ?? '',
      mhz: num('cpu MHz'),
      cacheSize: num('cache size'),
      flags: (f.get('flags') ?? f.get('Features') ?? '').split(/\s+/).filter(Boolean),
      microcode: f.get('microcode') ?? '',
    });
  }
  return out;
}

/** /etc/os-release -> its KEY=value pairs, quotes removed. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}
