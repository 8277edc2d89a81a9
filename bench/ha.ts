/**
 * The catalog on etcd against the embedded store (issue 14): KV write throughput, blocking-query
 * wake latency, and how long an agent and a client take to fail over when the server they talk
 * to is SIGKILLed. Everything runs in this one run, on this machine, on 127.0.0.1, each layout
 * with fresh data dirs (a fresh etcd cluster included); the embedded server is the baseline.
 *
 *   1. embedded: one `trellis server` (embedded write-ahead log): writes, then wake (X = Y);
 *   2. etcd, one server: a three-member etcd and one `trellis server --store etcd`: writes;
 *   3. etcd, three servers: a fresh three-member etcd and three servers over it: writes
 *      (writers round-robin over the servers), wake with X != Y and X = Y, then failover
 *      (bench/ha/failover.ts) with an agent that knows all three.
 * CPU is reported for the Trellis servers (sum), the etcd members (sum) and this client process.
 *
 * BENCH_HA_SECONDS (10)          seconds per write measurement
 * BENCH_HA_WRITERS (1,16)        concurrent writers
 * BENCH_HA_WAKES (100)           wake samples per row
 * BENCH_HA_FAILOVER_ROUNDS (3)   servers killed, one per round
 */
import { availableParallelism } from 'node:os';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt, envIntList } from './lib/config.js';
import { startServer } from './lib/server.js';
import { startEtcdLayout } from './ha/cluster.js';
import { measureFailover, type FailoverResult } from './ha/failover.js';
import { renderHa } from './ha/render.js';
import { measureWake, type WakeRow } from './ha/wake.js';
import { measureWrites, type WriteRow } from './ha/writes.js';

export interface HaResult {
  durationMs: number;
  /** Cores this machine has (every process here shares them). */
  cores: number;
  writes: WriteRow[];
  wakes: WakeRow[];
  failover: FailoverResult;
}

function logWrite(log: Log, w: WriteRow): void {
  log(
    `  ${Math.round(w.perSecond)} writes/s, p50 ${w.latency.p50.toFixed(2)} ms, p99 ${w.latency.p99.toFixed(2)} ms, ` +
      `${w.errors} errors; CPU trellis ${Math.round(w.cpu.trellis)}%` +
      `${w.cpu.etcd !== undefined ? `, etcd ${Math.round(w.cpu.etcd)}%` : ''}, client ${Math.round(w.cpu.client)}%`,
  );
}

function logWake(log: Log, w: WakeRow): void {
  log(
    `  wake p50 ${w.wake.p50.toFixed(2)} ms, p99 ${w.wake.p99.toFixed(2)} ms (write ack p50 ${w.writeAck.p50.toFixed(2)} ms); ` +
      `${w.early} early, ${w.errors} errors`,
  );
}

export const ha: Benchmark<HaResult> = {
  name: 'ha',
  title: 'the catalog on etcd against the embedded store, and failover',
  async run(log) {
    const durationMs = envInt('BENCH_HA_SECONDS', 10) * 1000;
    const levels = envIntList('BENCH_HA_WRITERS', [1, 16]);
    const samples = envInt('BENCH_HA_WAKES', 100);
    const rounds = envInt('BENCH_HA_FAILOVER_ROUNDS', 3);
    const writes: WriteRow[] = [];
    const wakes: WakeRow[] = [];

    log('ha: embedded store, one server');
    const embedded = await startServer({ name: 'ha-embedded' });
    try {
      for (const writers of levels) {
        log(`ha: embedded, ${writers} writer(s), ${durationMs / 1000}s`);
        const w = await measureWrites({
          layout: 'embedded, 1 server',
          origins: [embedded.origin],
          writers,
          durationMs,
          keyPrefix: `ha/embedded/w${writers}`,
          cpu: { trellisMs: embedded.cpuMs },
        });
        logWrite(log, w);
        writes.push(w);
      }
      log(`ha: embedded wake, ${samples} samples`);
      const w = await measureWake({
        layout: 'embedded',
        watch: { name: 'the server', origin: embedded.origin },
        write: { name: 'the server', origin: embedded.origin },
        samples,
        key: 'ha/wake/embedded',
      });
      logWake(log, w);
      wakes.push(w);
    } finally {
      await embedded.stop();
    }

    log('ha: etcd (3 members), one server');
    const single = await startEtcdLayout(1, 'one');
    try {
      for (const writers of levels) {
        log(`ha: etcd, 1 server, ${writers} writer(s), ${durationMs / 1000}s`);
        const w = await measureWrites({
          layout: 'etcd, 1 server',
          origins: [single.servers[0]!.origin],
          writers,
          durationMs,
          keyPrefix: `ha/etcd1/w${writers}`,
          cpu: { trellisMs: single.serversCpuMs, etcdMs: single.etcdCpuMs },
        });
        logWrite(log, w);
        writes.push(w);
      }
    } finally {
      await single.stop();
    }

    log('ha: etcd (3 members), three servers');
    const three = await startEtcdLayout(3, 'three');
    try {
      const [a, b] = three.servers as [(typeof three.servers)[0], (typeof three.servers)[0]];
      for (const writers of levels) {
        log(`ha: etcd, 3 servers, ${writers} writer(s), ${durationMs / 1000}s`);
        const w = await measureWrites({
          layout: 'etcd, 3 servers',
          origins: three.servers.map((s) => s.origin),
          writers,
          durationMs,
          keyPrefix: `ha/etcd3/w${writers}`,
          cpu: { trellisMs: three.serversCpuMs, etcdMs: three.etcdCpuMs },
        });
        logWrite(log, w);
        writes.push(w);
      }
      for (const [watch, write, key] of [
        [a, b, 'ha/wake/etcd-ab'],
        [a, a, 'ha/wake/etcd-aa'],
      ] as const) {
        log(`ha: etcd wake, watch on ${watch.name}, write to ${write.name}, ${samples} samples`);
        const w = await measureWake({
          layout: 'etcd, 3 servers',
          watch: { name: watch.name, origin: watch.origin },
          write: { name: write.name, origin: write.origin },
          samples,
          key,
        });
        logWake(log, w);
        wakes.push(w);
      }
      log(`ha: failover, ${rounds} round(s)`);
      const failover = await measureFailover(three.servers, rounds, log);
      return { durationMs, cores: availableParallelism(), writes, wakes, failover };
    } finally {
      await three.stop();
    }
  },
  render: renderHa,
};
