/** Parsing the Linux files /v1/agent/host is made from. */
import { expect } from 'chai';
import {
  parseCpuinfo,
  parseMeminfo,
  parseOsRelease,
} from '../../../src/agent/host/proc-parsers.js';

describe('agent host info: /proc parsers', () => {
  it('reads /proc/meminfo into bytes with used and usedPercent', () => {
    const m = parseMeminfo(
      [
        'MemTotal:        1000 kB',
        'MemFree:          200 kB',
        'MemAvailable:     600 kB',
        'Buffers:          100 kB',
        'Cached:           250 kB',
        'SReclaimable:      50 kB',
        'SwapTotal:        512 kB',
        'HugePages_Total:    3',
        'Hugepagesize:    2048 kB',
        'Unknown:            9 kB',
      ].join('\n'),
    );
    expect(m).to.include({
      total: 1024_000,
      free: 204_800,
      available: 614_400,
      buffers: 102_400,
      cached: 307_200,
      swapTotal: 524_288,
      hugePagesTotal: 3,
      hugePageSize: 2_097_152,
      used: 409_600,
      usedPercent: 40,
    });
    expect(m).to.not.have.property('Unknown');
  });

  it('reads one entry per processor from /proc/cpuinfo', () => {
    const block = (n: number): string =>
      [
        `processor\t: ${n}`,
        'vendor_id\t: GenuineIntel',
        'cpu family\t: 6',
        'model\t\t: 85',
        'model name\t: Intel(R) Xeon(R)',
        'stepping\t: 7',
        'microcode\t: 0x5003',
        'cpu MHz\t\t: 2500.000',
        'cache size\t: 36608 KB',
        'physical id\t: 0',
        `core id\t\t: ${n}`,
        'flags\t\t: fpu vme sse',
      ].join('\n');
    const cpus = parseCpuinfo(`${block(0)}\n\n${block(1)}\n`);
    expect(cpus).to.have.length(2);
    expect(cpus[1]).to.deep.equal({
      cpu: 1,
      vendorId: 'GenuineIntel',
      family: '6',
      model: '85',
      stepping: 7,
      physicalId: '0',
      coreId: '1',
      cores: 1,
      modelName: 'Intel(R) Xeon(R)',
      mhz: 2500,
      cacheSize: 36608,
      flags: ['fpu', 'vme', 'sse'],
      microcode: '0x5003',
    });
  });

  it('reads /etc/os-release, quoted or not', () => {
    expect(parseOsRelease('ID=debian\nVERSION_ID="12"\nNAME=\'Debian\'\n# c\n')).to.deep.equal({
      ID: 'debian',
      VERSION_ID: '12',
      NAME: 'Debian',
    });
  });
});
