/**
 * Trellis benchmarks: `npm run bench` (build, then every benchmark in order) or
 * `node dist/bench/run.js <name> [<name>...]` for some of them; `--list` prints the names.
 *
 *   registration  registration writes/s with fsync at 1/16/128 writers, HTTP and disk baselines
 *   fanout        blocking-query wake-up time for 1,000 and 10,000 watchers
 *   read-latency  read latency and server memory with 100,000 instances loaded
 *   leaf-signing  leaf certificates issued per second (in process, and over HTTP)
 *   intentions    intention checks/s (decide() and /check) and write-to-100-agent-caches time
 *   dataplane     proxy pairs (nginx direct, HAProxy, Trellis; HTTP/1.1 and HTTP/2) driven by wrk,
 *                 h2load and a Node open loop: saturated req/s, latency at 2 connections and at
 *                 1,000 req/s, CPU per request; agent memory; issue 12's goals table
 *   interception  transparent (nftables) vs explicit upstream at 1,000 req/s, ruleset apply time
 *                 for 1,000 endpoints (root, ip, nft and setpriv; in its own network namespace)
 *   agent-restart an agent restarted 10 times under 200 req/s through a pair: failed requests and
 *                 the longest gap without an answer
 *   libraries     our RE2 and DNS wire code against re2js and dns-packet (in process, no server)
 *   ha            the catalog on etcd (3 members, 1 and 3 servers) against the embedded store:
 *                 KV writes/s at 1 and 16 writers, blocking-query wake latency across servers,
 *                 agent and client failover time when a server is SIGKILLed
 *
 * Each benchmark starts its own `trellis server` (127.0.0.1, port 0, fresh temp data dir) and
 * stops it by PID when done (dataplane also starts nginx, proxies, HAProxy, wrk/h2load and agents, each
 * stopped the same way; ha starts three etcd members, three servers and an agent, stopped by PID
 * too). Sizes come from BENCH_* environment variables, documented at the top of each benchmark's
 * file.
 *
 * Report: docs/benchmarks.md is rewritten after every run. It has a header (machine, date,
 * command) and one section per benchmark under a `## <name>: <title>` heading. Sections of
 * benchmarks not run this time are parsed out of the previous file by those headings and kept
 * as they were (each section carries its own "Measured" date).
 */
import { agentRestart } from './agent-restart.js';
import { dataplane } from './dataplane.js';
import { fanout } from './fanout.js';
import { ha } from './ha.js';
import { intentions } from './intentions.js';
import { libraries } from './libraries.js';
import { interception } from './interception.js';
import { runnable, type Runnable } from './lib/benchmark.js';
import { describe } from './lib/errors.js';
import { busyPercent, cpuTimes, loadAverage, machineInfo } from './lib/machine.js';
import { REPORT_PATH } from './lib/paths.js';
import { header, readPreviousSections, sectionText, writeReport } from './lib/report.js';
import { stopAllServers } from './lib/server.js';
import { readLatency } from './read-latency.js';
import { registration } from './registration.js';
import { leafSigning } from './leaf-signing.js';

const BENCHMARKS: Runnable[] = [
  runnable(registration),
  runnable(fanout),
  runnable(readLatency),
  runnable(intentions),
  runnable(leafSigning),
  runnable(dataplane),
  runnable(interception),
  runnable(agentRestart),
  runnable(libraries),
  runnable(ha),
];

function log(message: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t}] ${message}\n`);
}

/** The command as it was typed, with the BENCH_* variables that were set in front of it. */
function commandLine(names: string[]): string {
  const vars = Object.entries(process.env)
    .filter(([k, v]) => k.startsWith('BENCH_') && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const viaNpm = process.env.npm_lifecycle_event === 'bench';
  const cmd = viaNpm
    ? `npm run bench${names.length ? ` -- ${names.join(' ')}` : ''}`
    : `node dist/bench/run.js${names.length ? ` ${names.join(' ')}` : ''}`;
  return [...vars, cmd].join(' ');
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--list') || argv.includes('--help')) {
    process.stdout.write(
      `usage: node dist/bench/run.js [${BENCHMARKS.map((b) => b.name).join('|')} ...]\n`,
    );
    return 0;
  }
  const unknown = argv.filter((a) => !BENCHMARKS.some((b) => b.name === a));
  if (unknown.length) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}\n`,
    );
    return 2;
  }
  const selected = argv.length ? BENCHMARKS.filter((b) => argv.includes(b.name)) : BENCHMARKS;
  const started = new Date();
  const sections = readPreviousSections(REPORT_PATH);
  let failed = 0;
  for (const b of selected) {
    log(`== ${b.name}: ${b.title}`);
    try {
      const load = loadAverage();
      const cpu0 = cpuTimes();
      const outcome = await b.execute(log);
      const machineBusy = busyPercent(cpu0, cpuTimes());
      const text = sectionText({ ...outcome, date: new Date(), loadAverage: load, machineBusy });
      sections.set(b.name, text);
      process.stdout.write(`\n${text}\n`);
    } catch (err) {
      failed++;
      log(`${b.name} failed: ${err instanceof Error && err.stack ? err.stack : describe(err)}`);
      await stopAllServers();
    }
  }
  const head = header(machineInfo(), started, commandLine(argv));
  writeReport(
    REPORT_PATH,
    head,
    BENCHMARKS.map((b) => b.name),
    sections,
  );
  log(
    `wrote ${REPORT_PATH}${failed ? ` (${failed} benchmark(s) failed; their previous sections were kept)` : ''}`,
  );
  return failed ? 1 : 0;
}

const interrupt = (): void => {
  log('interrupted: stopping the servers this run started');
  void stopAllServers().finally(() => process.exit(130));
};
process.once('SIGINT', interrupt);
process.once('SIGTERM', interrupt);

try {
  process.exitCode = await main(process.argv.slice(2));
} finally {
  await stopAllServers();
}
