/**
 * Transparent interception (nftables) against explicit upstreams, and what applying a large
 * ruleset costs. Needs root, `ip`, `nft` and `setpriv`; without them the section says why it
 * was skipped. Everything runs in a network namespace this benchmark creates
 * (`trellis-b-<random>`, with a veth pair so virtual IPs have a route) and deletes at the end,
 * also on failure; the host's own ruleset and routes are never touched. Processes inside it
 * are started with `ip netns exec` (which execs, so each PID is the process itself) and
 * stopped by PID; a helper (bench/interception/ns-helper.ts) does the HTTP calls and nft
 * polling from inside.
 *
 *   1. Apply time (before any agent runs): NftApplier.apply() of a plan with one captured uid
 *      and BENCH_INTERCEPTION_TARGETS real address:port targets, then the same plus as many
 *      virtual IPs, and an empty plan as the baseline: render + `nft -f` + `nft list`, the
 *      median of BENCH_INTERCEPTION_APPLY_RUNS runs, with the parts timed separately and the
 *      size of the text nft reads.
 *   2. Latency at a fixed rate: a `trellis server`, one `trellis agent` (root, so uid 0 is the
 *      proxy uid) with two sidecars (web: transparent, capture_user the uid 65534 user, and an
 *      explicit upstream to api on 127.0.0.1:19001; api: in front of the data-plane
 *      benchmark's app, bench/dataplane/app-server.ts), and the data-plane benchmark's
 *      open-loop generator (bench/dataplane/loadgen.ts) running as uid 65534 for every path so
 *      that only the destination differs: direct to the app, the explicit upstream, and the
 *      api virtual IP on port 80 (redirected by the kernel to web's implicit listener).
 *      BENCH_INTERCEPTION_ROUNDS interleaved rounds; p50/p90/p99 (medians over rounds), the
 *      added latency over direct, and the agent's CPU time (from /proc, proxies are in-process)
 *      per 1,000 requests.
 *   3. End to end: BENCH_INTERCEPTION_TARGETS api instances are registered on the server
 *      (catalog register: a node each with `api` and `api-sidecar-proxy`), then the time from
 *      the answer to the last registration until the agent's map `out4_u65534` holds every
 *      address (polled every 50 ms with `nft list map`).
 *
 * BENCH_INTERCEPTION_RATE (1000)             open-loop requests per second
 * BENCH_INTERCEPTION_SECONDS (20)            measured seconds per path (all rounds)
 * BENCH_INTERCEPTION_ROUNDS (3)              interleaved rounds over the three paths
 * BENCH_INTERCEPTION_WARMUP_SECONDS (2)      unmeasured seconds before each measurement
 * BENCH_INTERCEPTION_BODY_BYTES (1024)       request and response body size
 * BENCH_INTERCEPTION_CONNECTIONS (32)        keep-alive connections of the generator
 * BENCH_INTERCEPTION_TARGETS (1000)          upstream endpoints in the apply and end-to-end parts
 * BENCH_INTERCEPTION_APPLY_RUNS (10)         measured applies per plan
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, Log } from './lib/benchmark.js';
import { envInt } from './lib/config.js';
import { describe } from './lib/errors.js';
import { bytes, int, ms, table } from './lib/format.js';
import { TRELLIS_BIN } from './lib/paths.js';
import { now, sleep } from './lib/time.js';
import { ProcessGroup, type Child } from './dataplane/children.js';
import { combineLoadReports } from './dataplane/combine.js';
import { READY_MARK, RESULT_MARK as LOAD_MARK } from './dataplane/types.js';
import type { LoadJob, LoadReport } from './dataplane/types.js';
import type { ApplyTiming, RegisterWatch } from './interception/ns-helper.js';
import { RESULT_MARK } from './interception/types.js';

const APP = fileURLToPath(new URL('./dataplane/app-server.js', import.meta.url));
const LOADGEN = fileURLToPath(new URL('./dataplane/loadgen.js', import.meta.url));
const HELPER = fileURLToPath(new URL('./interception/ns-helper.js', import.meta.url));

const CAPTURED_UID = 65534;
const NS_ADDRESS = '198.18.200.1';
const WEB_SIDECAR_PORT = 21000;
const API_SIDECAR_PORT = 21001;
const EXPLICIT_BIND_PORT = 19001;
const WEB_PORT = 18081;

interface Settings {
  rate: number;
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  bodyBytes: number;
  connections: number;
  targets: number;
  applyRuns: number;
}

function settings(): Settings {
  return {
    rate: envInt('BENCH_INTERCEPTION_RATE', 1000),
    seconds: envInt('BENCH_INTERCEPTION_SECONDS', 20),
    rounds: envInt('BENCH_INTERCEPTION_ROUNDS', 3),
    warmupSeconds: envInt('BENCH_INTERCEPTION_WARMUP_SECONDS', 2),
    bodyBytes: envInt('BENCH_INTERCEPTION_BODY_BYTES', 1024),
    connections: envInt('BENCH_INTERCEPTION_CONNECTIONS', 32),
    targets: envInt('BENCH_INTERCEPTION_TARGETS', 1000),
    applyRuns: envInt('BENCH_INTERCEPTION_APPLY_RUNS', 10),
  };
}

type PathId = 'direct' | 'explicit' | 'transparent';

interface PathRow {
  id: PathId;
  label: string;
  fixed?: LoadReport;
  rounds: number[];
  failed?: string;
}

interface ApplyRow extends ApplyTiming {
  label: string;
}

export interface InterceptionResult {
  skipped?: string;
  settings?: Settings;
  captureUser?: string;
  vip?: string;
  paths: PathRow[];
  pathsError?: string;
  apply: ApplyRow[];
  applyError?: string;
  endToEnd?: RegisterWatch;
  endToEndError?: string;
  elapsedMs: number;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .concat(['/usr/sbin', '/sbin'])
    .some((d) => d && existsSync(join(d, bin)));
}

/** Why this benchmark cannot run here, or undefined. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'not running as root (network namespaces and nftables need it)';
  const missing = ['ip', 'nft', 'setpriv'].filter((b) => !onPath(b));
  if (missing.length) return `${missing.join(', ')} not found on PATH`;
  return undefined;
}

/** The name of the uid-65534 user for capture_user (numeric if the host has no such name). */
function capturedUserName(): string {
  try {
    const line = execFileSync('getent', ['passwd', String(CAPTURED_UID)], { encoding: 'utf8' });
    return line.split(':')[0] || String(CAPTURED_UID);
  } catch {
    return String(CAPTURED_UID);
  }
}

/** Namespaces created by this process and not deleted yet: deleted on exit whatever happens. */
const liveNamespaces = new Set<string>();
process.on('exit', () => {
  for (const ns of liveNamespaces) deleteNamespace(ns);
});

function deleteNamespace(ns: string): void {
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already gone
  }
  liveNamespaces.delete(ns);
}

function createNamespace(): string {
  const ns = `trellis-b-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  liveNamespaces.add(ns);
  const ipn = (...args: string[]): void => {
    execFileSync('ip', ['-n', ns, ...args]);
  };
  try {
    ipn('link', 'set', 'lo', 'up');
    // A veth pair inside the namespace: virtual IPs need a route to a real link so the kernel
    // sends the SYN (the redirect happens before it leaves).
    ipn('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ipn('link', 'set', 'v0', 'up');
    ipn('link', 'set', 'v1', 'up');
    ipn('addr', 'add', `${NS_ADDRESS}/24`, 'dev', 'v0');
    ipn('route', 'add', 'default', 'dev', 'v0');
  } catch (err) {
    deleteNamespace(ns);
    throw err;
  }
  return ns;
}

/** Runs a command in the namespace (optionally as uid 65534), as a child of the group. */
function inNs(
  group: ProcessGroup,
  ns: string,
  name: string,
  command: string[],
  asCaptured = false,
): Child {
  const user = asCaptured
    ? [
        'setpriv',
        '--reuid',
        String(CAPTURED_UID),
        '--regid',
        String(CAPTURED_UID),
        '--clear-groups',
      ]
    : [];
  return group.spawn({ name, command: 'ip', args: ['netns', 'exec', ns, ...user, ...command] });
}

/** Runs the in-namespace helper once and returns its result. */
async function helper<T>(
  group: ProcessGroup,
  ns: string,
  command: string,
  job: object,
  timeoutMs: number,
  asCaptured = false,
): Promise<T> {
  const child = inNs(
    group,
    ns,
    `helper-${command}`,
    [process.execPath, HELPER, command, JSON.stringify(job)],
    asCaptured,
  );
  try {
    return JSON.parse(await child.waitLine(RESULT_MARK, timeoutMs), (_k, v: unknown) =>
      v === null ? Number.NaN : v,
    ) as T;
  } finally {
    await group.stop(child);
  }
}

function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return Number.NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Waits (at most 10 s) until the processes are idle (under 5% of a core over 250 ms). */
async function quiesce(children: Child[]): Promise<void> {
  const until = now() + 10_000;
  while (now() < until) {
    const before = children.map((c) => c.cpuMs());
    const t0 = now();
    await sleep(250);
    if (!children.some((c, i) => ((c.cpuMs() - before[i]!) / (now() - t0)) * 100 > 5)) return;
  }
}

async function measureApply(
  group: ProcessGroup,
  ns: string,
  s: Settings,
  log: Log,
): Promise<ApplyRow[]> {
  const variants = [
    { label: 'empty plan (baseline)', targets: 0, vips: 0 },
    { label: `${int(s.targets)} targets`, targets: s.targets, vips: 0 },
    {
      label: `${int(s.targets)} targets + ${int(s.targets)} VIPs`,
      targets: s.targets,
      vips: s.targets,
    },
  ];
  const rows: ApplyRow[] = [];
  for (const v of variants) {
    const r = await helper<ApplyTiming>(
      group,
      ns,
      'apply-timing',
      { runs: s.applyRuns, targets: v.targets, vips: v.vips, uid: CAPTURED_UID },
      120_000,
    );
    rows.push({ ...r, label: v.label });
    log(
      `interception: apply ${v.label}: median ${ms(median(r.applyMs))} ms, ${bytes(r.rulesetBytes)}`,
    );
  }
  return rows;
}

function serviceFiles(dir: string, appPort: number, captureUser: string): void {
  writeFileSync(
    join(dir, 'web.hcl'),
    `service {
  name = "web"
  port = ${WEB_PORT}
  connect {
    sidecar_service {
      port = ${WEB_SIDECAR_PORT}
      proxy {
        mode = "transparent"
        transparent_proxy {
          capture_user = "${captureUser}"
        }
        upstreams = [{ destination_name = "api", local_bind_port = ${EXPLICIT_BIND_PORT} }]
      }
    }
  }
}
`,
  );
  writeFileSync(
    join(dir, 'api.hcl'),
    `service {
  name = "api"
  port = ${appPort}
  connect {
    sidecar_service {
      port = ${API_SIDECAR_PORT}
    }
  }
}
`,
  );
}

/** Runs the load generator once as uid 65534 in the namespace. */
async function generate(group: ProcessGroup, ns: string, job: LoadJob): Promise<LoadReport> {
  const child = inNs(group, ns, 'loadgen', [process.execPath, LOADGEN, JSON.stringify(job)], true);
  try {
    return JSON.parse(
      await child.waitLine(LOAD_MARK, job.warmupMs + job.durationMs + 60_000),
      (_k, v: unknown) => (v === null ? Number.NaN : v),
    ) as LoadReport;
  } finally {
    await group.stop(child);
  }
}

export const interception: Benchmark<InterceptionResult> = {
  name: 'interception',
  title: 'transparent (nftables) vs explicit upstream latency and CPU, ruleset apply time',
  async run(log) {
    const started = now();
    const why = unavailable();
    if (why) {
      log(`interception: skipped (${why})`);
      return { skipped: why, paths: [], apply: [], elapsedMs: 0 };
    }
    const s = settings();
    const captureUser = capturedUserName();
    const result: InterceptionResult = {
      settings: s,
      captureUser,
      paths: [],
      apply: [],
      elapsedMs: 0,
    };
    const group = new ProcessGroup();
    const ns = createNamespace();
    log(`interception: namespace ${ns}`);
    try {
      // 1. Apply time, before the agent owns the table.
      try {
        result.apply = await measureApply(group, ns, s, log);
      } catch (err) {
        log(`interception: apply timing failed: ${describe(err)}`);
        result.applyError = describe(err).slice(0, 500);
      }

      // 2. A server, an agent with web (transparent + explicit upstream) and api, the app.
      const dir = group.tempDir('interception');
      const configDir = join(dir, 'conf');
      for (const d of [configDir, join(dir, 'server'), join(dir, 'agent')])
        mkdirSync(d, { recursive: true });
      const app = inNs(group, ns, 'app', [process.execPath, APP, String(s.bodyBytes)]);
      const { port: appPort } = JSON.parse(await app.waitLine(READY_MARK, 10_000)) as {
        port: number;
      };
      const server = inNs(group, ns, 'server', [
        process.execPath,
        TRELLIS_BIN,
        'server',
        '--data-dir',
        join(dir, 'server'),
        '--bind',
        '127.0.0.1:0',
        '--node',
        'bench-server',
        '--acl-default-policy',
        'allow',
        '--log-level',
        'warn',
      ]);
      const serverAddr = await server.waitLine('trellis server listening on', 30_000);
      serviceFiles(configDir, appPort, captureUser);
      const agent = inNs(group, ns, 'agent', [
        process.execPath,
        TRELLIS_BIN,
        'agent',
        '--server',
        serverAddr,
        '--node',
        'bench-agent',
        '--data-dir',
        join(dir, 'agent'),
        '--config-dir',
        configDir,
        '--bind',
        '127.0.0.1:0',
        '--advertise',
        NS_ADDRESS,
        '--sync-interval',
        '1000',
        '--log-level',
        'warn',
      ]);
      await agent.waitLine('trellis agent listening on', 30_000);
      const origin = `http://${serverAddr}`;
      const t0 = now();
      let vip: string | undefined;
      while (!vip && now() - t0 < 30_000) {
        const r = await helper<{ status: number; body: string }>(
          group,
          ns,
          'get',
          { url: `${origin}/v1/internal/trellis/virtual-ips` },
          10_000,
        );
        vip = r.status === 200 ? (JSON.parse(r.body) as Record<string, string>).api : undefined;
        if (!vip) await sleep(200);
      }
      if (!vip) throw new Error('the api service got no virtual IP within 30 s');
      result.vip = vip;
      const paths: { id: PathId; label: string; origin: string }[] = [
        { id: 'direct', label: 'direct to the app', origin: `http://127.0.0.1:${appPort}` },
        {
          id: 'explicit',
          label: `explicit upstream (127.0.0.1:${EXPLICIT_BIND_PORT})`,
          origin: `http://127.0.0.1:${EXPLICIT_BIND_PORT}`,
        },
        { id: 'transparent', label: `transparent (VIP ${vip}:80)`, origin: `http://${vip}` },
      ];
      try {
        for (const p of paths)
          await helper(
            group,
            ns,
            'wait-http',
            { url: `${p.origin}/`, timeoutMs: 60_000 },
            70_000,
            true,
          );
        log(`interception: all paths answer (api VIP ${vip})`);
        const live = paths.map((p): PathRow & { reports: LoadReport[] } => ({
          id: p.id,
          label: p.label,
          rounds: [],
          reports: [],
        }));
        for (let round = 1; round <= s.rounds; round++) {
          for (const [i, p] of paths.entries()) {
            await quiesce([app, agent]);
            const report = await generate(group, ns, {
              origin: p.origin,
              rate: s.rate,
              connections: s.connections,
              warmupMs: s.warmupSeconds * 1000,
              durationMs: (s.seconds * 1000) / s.rounds,
              bodyBytes: s.bodyBytes,
              cpuPids: { agent: agent.pid, app: app.pid },
            });
            live[i]!.reports.push(report);
            live[i]!.rounds.push(report.latency.p99);
            log(
              `interception: ${p.id} (round ${round}/${s.rounds}): p50 ${ms(report.latency.p50)} ms, ` +
                `p99 ${ms(report.latency.p99)} ms, ${report.errors} errors`,
            );
          }
        }
        result.paths = live.map(({ reports, ...row }) => {
          const fixed = combineLoadReports(reports);
          return { ...row, ...(fixed ? { fixed } : {}) };
        });
      } catch (err) {
        log(`interception: latency part failed: ${describe(err)}`);
        result.pathsError = describe(err).slice(0, 500);
      }

      // 3. End to end: register the instances, wait for the agent's map to hold them all.
      try {
        await quiesce([agent]);
        result.endToEnd = await helper<RegisterWatch>(
          group,
          ns,
          'register-watch',
          {
            origin,
            count: s.targets,
            concurrency: 16,
            uid: CAPTURED_UID,
            appPort: 8080,
            pollMs: 50,
            timeoutMs: 120_000,
          },
          240_000,
        );
        log(
          `interception: ${s.targets} instances registered in ${ms(result.endToEnd.registerMs)} ms; ` +
            `in the nft map ${ms(result.endToEnd.convergeMs)} ms after the last (${result.endToEnd.found} found)`,
        );
        if (!agent.running()) throw new Error(`the agent exited:\n${agent.output()}`);
      } catch (err) {
        log(`interception: end-to-end part failed: ${describe(err)}`);
        result.endToEndError = describe(err).slice(0, 500);
      }
    } finally {
      await group.stopAll();
      deleteNamespace(ns);
    }
    result.elapsedMs = now() - started;
    return result;
  },
  render: renderInterception,
};

function perThousand(cpuMs: number | undefined, requests: number): string {
  if (cpuMs === undefined || !Number.isFinite(cpuMs) || requests <= 0) return 'n/a';
  return (cpuMs / requests).toFixed(3);
}

export function renderInterception(r: InterceptionResult): string {
  if (r.skipped)
    return `Skipped: ${r.skipped}. Run it as root with \`ip\`, \`nft\` and \`setpriv\` installed.`;
  const s = r.settings!;
  const out: string[] = [];
  out.push(
    `All in a network namespace created for the run (deleted afterwards). One \`trellis agent\` ` +
      `(root) runs two sidecars in process: web (transparent, capture_user "${r.captureUser}", ` +
      `plus an explicit upstream to api on 127.0.0.1:${EXPLICIT_BIND_PORT}) and api (in front of ` +
      `the data-plane benchmark's app). The open-loop generator runs as uid ${CAPTURED_UID} for ` +
      `every path at ${int(s.rate)} req/s over ${s.connections} keep-alive connections, ` +
      `${int(s.bodyBytes)}-byte POSTs, ${s.seconds} s measured per path in ${s.rounds} ` +
      `interleaved rounds (each after ${s.warmupSeconds} s of warm-up). Percentiles are medians ` +
      `over rounds; latency runs from each request's intended send time.`,
    '',
  );
  if (r.pathsError) out.push(`**Latency part failed:** ${r.pathsError}`, '');
  const direct = r.paths.find((p) => p.id === 'direct')?.fixed;
  if (r.paths.length)
    out.push(
      table(
        [
          { title: 'Path' },
          { title: 'p50 ms', align: 'right' },
          { title: 'p90 ms', align: 'right' },
          { title: 'p99 ms', align: 'right' },
          { title: 'max ms', align: 'right' },
          { title: 'added p50 / p99 ms', align: 'right' },
          { title: 'agent CPU s per 1,000 req', align: 'right' },
          { title: 'p99 per round', align: 'right' },
          { title: 'errors', align: 'right' },
        ],
        r.paths.map((p) => {
          const f = p.fixed;
          if (!f) return [p.label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', '', p.failed ?? ''];
          const added =
            direct && p.id !== 'direct'
              ? `${ms(f.latency.p50 - direct.latency.p50)} / ${ms(f.latency.p99 - direct.latency.p99)}`
              : '-';
          return [
            p.label,
            ms(f.latency.p50),
            ms(f.latency.p90),
            ms(f.latency.p99),
            ms(f.latency.max),
            added,
            perThousand(f.cpuMs.agent, f.requests),
            p.rounds.map((x) => ms(x)).join(', '),
            int(f.errors),
          ];
        }),
      ),
      '',
      'The agent CPU column is the agent process (both sidecars are in it) over the measured ' +
        'windows, divided by the requests: on the direct path it is the idle agent. The ' +
        'transparent path differs from the explicit one only in the connection setup (the ' +
        "kernel's `redirect` of the first packet, through the `vip4_u65534` map); requests on " +
        'kept-alive connections pay nothing more.',
      '',
    );
  out.push(
    `**Applying the ruleset** (\`NftApplier.apply()\`: render, \`nft -f\` of the atomic replace, ` +
      `\`nft list table\`), one captured uid, median of ${s.applyRuns} runs after one unmeasured ` +
      `apply, in the benchmark's namespace:`,
    '',
  );
  if (r.applyError) out.push(`**Failed:** ${r.applyError}`, '');
  if (r.apply.length)
    out.push(
      table(
        [
          { title: 'Plan' },
          { title: 'apply ms (median)', align: 'right' },
          { title: 'min / max ms', align: 'right' },
          { title: 'render ms', align: 'right' },
          { title: 'nft -f ms', align: 'right' },
          { title: 'nft list ms', align: 'right' },
          { title: 'ruleset size', align: 'right' },
          { title: 'listing size', align: 'right' },
        ],
        r.apply.map((a) => [
          a.label,
          ms(median(a.applyMs)),
          `${ms(Math.min(...a.applyMs))} / ${ms(Math.max(...a.applyMs))}`,
          ms(median(a.renderMs)),
          ms(median(a.nftFileMs)),
          ms(median(a.listMs)),
          bytes(a.rulesetBytes),
          bytes(a.listingBytes),
        ]),
      ),
      '',
    );
  out.push(
    `**End to end:** ${int(s.targets)} api instances registered through the server's HTTP API ` +
      `(a node each, with \`api\` and \`api-sidecar-proxy\`; 16 in parallel), then the time from ` +
      `the answer to the last registration until the agent's \`out4_u${CAPTURED_UID}\` map held ` +
      `all ${int(s.targets)} addresses (polled every 50 ms, so up to 50 ms late): endpoint watch, ` +
      `the sidecar's rebuild, the 50 ms debounce and the apply.`,
    '',
  );
  if (r.endToEndError) out.push(`**Failed:** ${r.endToEndError}`, '');
  if (r.endToEnd)
    out.push(
      table(
        [
          { title: 'Instances', align: 'right' },
          { title: 'registering took ms', align: 'right' },
          { title: 'last registration to all in the map, ms', align: 'right' },
          { title: 'addresses found', align: 'right' },
        ],
        [
          [
            int(r.endToEnd.count),
            ms(r.endToEnd.registerMs),
            ms(r.endToEnd.convergeMs),
            int(r.endToEnd.found),
          ],
        ],
      ),
      '',
    );
  out.push(`Whole benchmark: ${(r.elapsedMs / 1000).toFixed(0)} s.`);
  return out.join('\n');
}
