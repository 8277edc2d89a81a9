#!/usr/bin/env node
/**
 * The `trellis` binary: the CLI (src/cli) plus the three daemons, `server`, `agent` and `dev`.
 * This is one of the two places (with src/core) that reads the process environment, signals
 * and the real clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigLoadError } from '../agent/agent.js';
import { action, runCli, type CliContext, type GlobalArgs } from '../cli/index.js';
import { describeError } from '../core/index.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { runAgent } from './agent-command.js';
import { runServer } from './server-command.js';

/** Resolves when SIGINT/SIGTERM arrives; SIGHUP calls `onHup`. */
function untilSignal(onHup?: () => void): Promise<string> {
  return new Promise((resolve) => {
    const done = (sig: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (onHup) process.off('SIGHUP', onHup);
      resolve(sig);
    };
    const onInt = done('SIGINT');
    const onTerm = done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    if (onHup) process.on('SIGHUP', onHup);
  });
}

/** A broken config dir at start: print every diagnostic and exit 2; rethrow anything else. */
function configErrorExit(err: unknown, stderr: (s: string) => void): number {
  if (!(err instanceof ConfigLoadError)) throw err;
  stderr(`${err.diagnostics.join('\n')}\n`);
  return 2;
}

function parseMeta(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf(':');
    if (i <= 0) throw new Error(`--node-meta "${kv}": expected key:value`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

interface DaemonArgs extends GlobalArgs {
  node?: string;
  datacenter: string;
  'data-dir'?: string;
  bind?: string;
  advertise?: string;
  server?: string[];
  'config-dir'?: string;
  'enable-script-checks'?: boolean;
  'log-level': string;
  'snapshot-every'?: number;
  'session-min-ttl'?: number;
  'node-grace'?: number;
  'sync-interval'?: number;
  'heartbeat-interval'?: number;
  'heartbeat-ttl'?: number;
  'node-meta'?: string[];
  'no-demo'?: boolean;
}

function commonOptions(y: Argv<GlobalArgs>): Argv<DaemonArgs> {
  return y
    .option('node', { type: 'string', describe: 'Node name (default: the hostname)' })
    .option('datacenter', { type: 'string', default: 'dc1', describe: 'Datacenter name' })
    .option('data-dir', { type: 'string', describe: 'Directory for durable state' })
    .option('log-level', {
      type: 'string',
      default: 'info',
      choices: ['debug', 'info', 'warn', 'error'],
    }) as unknown as Argv<DaemonArgs>;
}

function register(parser: Argv<GlobalArgs>, ctx: CliContext): Argv<GlobalArgs> {
  return parser
    .command<DaemonArgs>({
      command: 'server',
      describe: 'Run a catalog server',
      builder: (y) =>
        commonOptions(y)
          .option('bind', {
            type: 'string',
            default: '0.0.0.0:8500',
            describe: 'HTTP API listen address host:port',
          })
          .option('advertise', {
            type: 'string',
            describe: 'Address other hosts reach this server at',
          })
          .option('snapshot-every', {
            type: 'number',
            default: 10000,
            describe: 'Snapshot after this many writes',
          })
          .option('session-min-ttl', {
            type: 'number',
            describe: 'Smallest session TTL accepted, in ms (default 10000)',
          })
          .option('node-grace', {
            type: 'number',
            describe: 'Grace after start before silent nodes turn critical, ms (default 30000)',
          })
          .demandOption('data-dir')
          .example('$0 server --data-dir /var/lib/trellis --bind 0.0.0.0:8500', 'A catalog server'),
      handler: action<DaemonArgs>(ctx, async (env, args) => {
        const log = createLogger({ level: args['log-level'] });
        let server;
        try {
          server = await runServer(
            {
              dataDir: args['data-dir']!,
              datacenter: args.datacenter,
              bind: args.bind ?? '0.0.0.0:8500',
              ...(args.node ? { node: args.node } : {}),
              ...(args.advertise ? { advertise: args.advertise } : {}),
              ...(args['config-dir'] ? { configDir: args['config-dir'] } : {}),
              ...(args['snapshot-every'] ? { snapshotEvery: args['snapshot-every'] } : {}),
              ...(args['session-min-ttl'] !== undefined
                ? { sessionMinTtlMs: args['session-min-ttl'] }
                : {}),
              ...(args['node-grace'] !== undefined ? { nodeGraceMs: args['node-grace'] } : {}),
            },
            log,
          );
        } catch (err) {
          return configErrorExit(err, env.io.stderr);
        }
        env.io.stdout(`trellis server listening on ${server.address}\n`);
        const sig = await untilSignal(() => {
          server.agent
            .reload()
            .catch((err: unknown) =>
              log.error(
                { err: describeError(err) },
                'reload refused; the running configuration stays',
              ),
            );
        });
        log.info({ signal: sig }, 'shutting down');
        await server.close();
      }),
    })
    .command<DaemonArgs>({
      command: 'agent',
      describe: 'Run the per-host agent',
      builder: (y) =>
        commonOptions(y)
          .option('server', {
            type: 'string',
            array: true,
            demandOption: true,
            describe: 'Server address host:port (repeatable)',
          })
          .option('bind', {
            type: 'string',
            describe: 'Local HTTP API address (default: --http-addr, i.e. 127.0.0.1:8500)',
          })
          .option('advertise', {
            type: 'string',
            default: '127.0.0.1',
            describe: "This node's address in the catalog",
          })
          .option('config-dir', {
            type: 'string',
            describe: 'Directory of service definitions (*.hcl, *.json)',
          })
          .option('enable-script-checks', {
            type: 'boolean',
            default: false,
            describe: 'Allow checks that run commands',
          })
          .option('sync-interval', {
            type: 'number',
            describe: 'Full anti-entropy sync period, ms (default 60000)',
          })
          .option('heartbeat-interval', {
            type: 'number',
            describe: 'Heartbeat period, ms (default 2000)',
          })
          .option('heartbeat-ttl', {
            type: 'number',
            describe: 'Node stays alive this long without heartbeats, ms (default 10000)',
          })
          .option('node-meta', {
            type: 'string',
            array: true,
            describe: 'Node metadata key:value (repeatable)',
          })
          .demandOption('data-dir')
          .example(
            '$0 agent --server 198.18.0.10:8500 --node web-1 --data-dir /var/lib/trellis --config-dir /etc/trellis.d',
            'An agent',
          ),
      handler: action<DaemonArgs>(ctx, async (env, args) => {
        const log = createLogger({ level: args['log-level'] });
        let running;
        try {
          running = await runAgent(
            {
              servers: (args.server ?? []).flatMap((s) => s.split(',')).filter(Boolean),
              datacenter: args.datacenter,
              dataDir: args['data-dir']!,
              httpAddr: args.bind ?? args.httpAddr,
              ...(args.node ? { node: args.node } : {}),
              ...(args['config-dir'] ? { configDir: args['config-dir'] } : {}),
              ...(args.advertise ? { advertise: args.advertise } : {}),
              enableScriptChecks: args['enable-script-checks'] ?? false,
              ...(args['sync-interval'] ? { syncIntervalMs: args['sync-interval'] } : {}),
              ...(args['heartbeat-interval']
                ? { heartbeatIntervalMs: args['heartbeat-interval'] }
                : {}),
              ...(args['heartbeat-ttl'] ? { heartbeatTtlMs: args['heartbeat-ttl'] } : {}),
              nodeMeta: parseMeta(args['node-meta']),
              ...(args.token ? { token: args.token } : {}),
            },
            log,
          );
        } catch (err) {
          return configErrorExit(err, env.io.stderr);
        }
        env.io.stdout(`trellis agent listening on ${running.address}\n`);
        const agent = running.agent;
        const sig = await untilSignal(() => {
          agent.reload().catch((err: unknown) => {
            if (err instanceof ConfigLoadError)
              log.error(
                { errors: err.diagnostics },
                'reload refused; the running configuration stays',
              );
            else
              log.error(
                { err: describeError(err) },
                'reload failed; the running configuration stays',
              );
          });
        });
        log.info({ signal: sig }, 'shutting down');
        await running.close({ leave: sig === 'SIGINT' || sig === 'SIGTERM' });
      }),
    })
    .command<DaemonArgs>({
      command: 'dev',
      describe: 'Run a server and an agent in one process, with data in a temporary directory',
      builder: (y) =>
        commonOptions(y)
          .option('bind', {
            type: 'string',
            default: '127.0.0.1:8500',
            describe: 'HTTP API listen address',
          })
          .option('config-dir', { type: 'string', describe: 'Directory of service definitions' })
          .option('no-demo', {
            type: 'boolean',
            default: false,
            describe: 'Do not register the demo service',
          })
          .example('$0 dev', 'Start a development cluster on 127.0.0.1:8500'),
      handler: action<DaemonArgs>(ctx, async (env, args) => runDev(env.io.stdout, args)),
    });
}

async function runDev(stdout: (s: string) => void, args: DaemonArgs): Promise<number> {
  const log: Logger = createLogger({ level: args['log-level'] });
  const dataDir = args['data-dir'] ?? mkdtempSync(join(tmpdir(), 'trellis-dev-'));
  const running = await runServer(
    {
      dataDir,
      datacenter: args.datacenter,
      node: args.node ?? 'dev',
      bind: args.bind ?? '127.0.0.1:8500',
      advertise: '127.0.0.1',
      sessionMinTtlMs: 1000,
      ...(args['config-dir'] ? { configDir: args['config-dir'] } : {}),
    },
    log,
  );
  const agent = running.agent;
  if (!args['no-demo'] && !agent.local.services.has('demo')) {
    agent.local.addService(
      { Name: 'demo', ID: 'demo', Port: 8080, Tags: ['demo'], Meta: { purpose: 'try trellis' } },
      'api',
    );
  }
  stdout(
    `trellis dev ready on http://${running.address} (data in ${dataDir})\n` +
      `  try: trellis catalog services\n        trellis kv put hello world && trellis kv get hello\n`,
  );
  await untilSignal(
    () =>
      void agent
        .reload()
        .catch((err: unknown) => log.error({ err: describeError(err) }, 'reload failed')),
  );
  await running.close();
  if (!args['data-dir']) rmSync(dataDir, { recursive: true, force: true });
  return 0;
}

const controller = new AbortController();
// First Ctrl-C ends long-running commands (watch) cleanly; a second one exits at once.
let interrupts = 0;
const onInterrupt = (): void => {
  if (++interrupts > 1) process.exit(130);
  controller.abort();
};
const daemon = ['server', 'agent', 'dev'].includes(process.argv[2] ?? '');
if (!daemon) process.on('SIGINT', onInterrupt);
const code = await runCli(
  process.argv.slice(2),
  {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    env: process.env,
    stdin: process.stdin,
    signal: controller.signal,
  },
  { register },
);
process.exitCode = code;
