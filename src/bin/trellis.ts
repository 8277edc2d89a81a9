#!/usr/bin/env node
/**
 * The `trellis` binary: the CLI (src/cli) plus the three daemons, `server`, `agent` and `dev`.
 * This is one of the two places (with src/core) that reads the process environment, signals
 * and the real clock.
 */
import { metaKeyProblem, metaPairsProblem, metaValueProblem } from '../api/text-rules.js';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { ConfigLoadError } from '../agent/config-load-error.js';
import { DEFAULT_DRAIN_GRACE_MS, DEFAULT_DRAIN_TIMEOUT_MS } from '../agent/drain-defaults.js';
import {
  action,
  DEFAULT_HTTP_ADDR,
  runCli,
  UsageError,
  type CliContext,
  type GlobalArgs,
} from '../cli/index.js';
import type { AgentSettings, LogLevel } from '../config/index.js';
import { describeError, parseDuration } from '../core/index.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { DEFAULT_DATA_PLANE_SOCKET, defaultProxyWorkers } from './daemon-defaults.js';
import { registerLab } from './lab-command.js';
import {
  DEFAULT_DATACENTER,
  DEFAULT_LOG_LEVEL,
  DEFAULT_SERVER_BIND,
  logRestartNeeded,
  readSettings,
  resolveAgent,
  resolveServer,
  unusedSettings,
  type DaemonFlags,
} from './settings.js';
import { systemdNotifier } from './sd-notify.js';
import { agentDrainCommand } from '../cli/commands/agent/drain.js';

interface ProxyArgs extends GlobalArgs {
  socket: string;
  'proxy-workers'?: number;
  'drain-timeout'?: string;
  'log-level'?: string;
}

/** Resolves when SIGINT/SIGTERM arrives; SIGHUP calls `onHup`. `cancel` stops listening. */
function untilSignal(onHup?: () => void): Promise<string> & { cancel(): void } {
  let cancel = (): void => undefined;
  const promise = new Promise<string>((resolve) => {
    const off = (): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (onHup) process.off('SIGHUP', onHup);
    };
    const done = (sig: string) => () => {
      off();
      resolve(sig);
    };
    const onInt = done('SIGINT');
    const onTerm = done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    if (onHup) process.on('SIGHUP', onHup);
    cancel = off;
  });
  return Object.assign(promise, { cancel });
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
    if (i <= 0) throw new UsageError(`--node-meta ${JSON.stringify(kv)}: expected key:value`);
    const key = kv.slice(0, i);
    const problem = metaKeyProblem(key) ?? metaValueProblem(kv.slice(i + 1));
    if (problem) throw new UsageError(`--node-meta ${JSON.stringify(kv)}: ${problem}`);
    out[key] = kv.slice(i + 1);
  }
  const many = metaPairsProblem(Object.keys(out).length);
  if (many) throw new UsageError(`--node-meta: ${many}`);
  return out;
}

interface DaemonArgs extends GlobalArgs {
  node?: string;
  datacenter?: string;
  'data-dir'?: string;
  bind?: string;
  advertise?: string;
  server?: string[];
  'config-dir'?: string;
  'enable-script-checks'?: boolean;
  'proxy-workers'?: number;
  'log-level'?: LogLevel;
  'snapshot-every'?: number;
  'session-min-ttl'?: number;
  'node-grace'?: number;
  'ca-clock-skew'?: number;
  'sync-interval'?: number;
  'heartbeat-interval'?: number;
  'heartbeat-ttl'?: number;
  'node-meta'?: string[];
  demo?: boolean;
  'acl-default-policy'?: 'allow' | 'deny';
  'https-bind'?: string;
  'metrics-bind'?: string;
  'dns-bind'?: string;
  recursor?: string[];
  'virtual-ip-range'?: string;
  'http-max-conns-per-client'?: number;
  'http-handshake-timeout'?: number;
  'join-token'?: string;
  'ca-fingerprint'?: string;
  'drain-timeout'?: string;
  'drain-grace'?: string;
  'data-plane-socket'?: string;
  store?: 'embedded' | 'etcd';
  'etcd-endpoints'?: string[];
  'etcd-prefix'?: string;
  'etcd-ca-file'?: string;
  'etcd-cert-file'?: string;
  'etcd-key-file'?: string;
  'etcd-username'?: string;
  'ca-encryption-key-file'?: string;
  'ca-encryption-previous-key-file'?: string[];
}

const PROXY_WORKERS_OPTION = {
  type: 'number',
  defaultDescription: 'proxy_workers in --config-dir, else the number of cores (at most 8)',
  describe:
    "Processes that carry the sidecar proxies' traffic, sharing their listeners; 0: in the agent process",
} as const;

/** A number flag in ms (or a count); undefined when not given. */
function numberFlag(value: number | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min)
    throw new UsageError(`--${flag} must be an integer of at least ${min}`);
  return value;
}

/** A duration flag (30s, 1m30s) in ms, or undefined when not given. */
function durationFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0)
    throw new UsageError(`--${flag} must be a duration such as 30s or 1m30s, not ${value}`);
  return ms;
}

/**
 * The daemon flags the command line gave. Daemon flags have no yargs defaults, so an absent
 * flag is undefined and a config-dir setting can take its place (see settings.ts).
 */
function givenFlags(args: DaemonArgs): DaemonFlags {
  // The agent's --http-addr is another name for its --bind: two different values are refused.
  if (args.bind !== undefined && args.httpAddr !== undefined && args.bind !== args.httpAddr)
    throw new UsageError('--bind and --http-addr name the same address; give one of them');
  return {
    node: args.node,
    datacenter: args.datacenter,
    dataDir: args['data-dir'],
    advertise: args.advertise,
    bind: args.bind,
    httpAddr: args.httpAddr,
    servers: args.server?.flatMap((s) => s.split(',')).filter(Boolean),
    enableScriptChecks: args['enable-script-checks'],
    proxyWorkers: numberFlag(args['proxy-workers'], 'proxy-workers', 0),
    dataPlaneSocket: args['data-plane-socket'],
    nodeMeta: args['node-meta'] ? parseMeta(args['node-meta']) : undefined,
    logLevel: args['log-level'],
    heartbeatIntervalMs: numberFlag(args['heartbeat-interval'], 'heartbeat-interval', 1),
    heartbeatTtlMs: numberFlag(args['heartbeat-ttl'], 'heartbeat-ttl', 1),
    syncIntervalMs: numberFlag(args['sync-interval'], 'sync-interval', 1),
    snapshotEvery: numberFlag(args['snapshot-every'], 'snapshot-every', 1),
    sessionMinTtlMs: numberFlag(args['session-min-ttl'], 'session-min-ttl', 0),
    nodeGraceMs: numberFlag(args['node-grace'], 'node-grace', 0),
    caClockSkewMs: numberFlag(args['ca-clock-skew'], 'ca-clock-skew', 0),
    aclDefaultPolicy: args['acl-default-policy'],
    metricsBind: args['metrics-bind'],
    dnsBind: args['dns-bind'],
    recursors: args.recursor,
    virtualIpRange: args['virtual-ip-range'],
    httpMaxConnsPerClient: numberFlag(
      args['http-max-conns-per-client'],
      'http-max-conns-per-client',
      0,
    ),
    httpHandshakeTimeoutMs: numberFlag(args['http-handshake-timeout'], 'http-handshake-timeout', 0),
    store: args.store,
    etcdEndpoints: args['etcd-endpoints']?.flatMap((s) => s.split(',')).filter(Boolean),
    etcdPrefix: args['etcd-prefix'],
    etcdCaFile: args['etcd-ca-file'],
    etcdCertFile: args['etcd-cert-file'],
    etcdKeyFile: args['etcd-key-file'],
    etcdUsername: args['etcd-username'],
    caEncryptionKeyFile: args['ca-encryption-key-file'],
    caEncryptionPreviousKeyFiles: args['ca-encryption-previous-key-file'],
  };
}

/** The server's etcd flags (docs/ha.md); each has a key in the `etcd` block of a config file. */
const ETCD_OPTIONS = {
  store: {
    choices: ['embedded', 'etcd'] as const,
    defaultDescription: 'embedded',
    describe:
      'Where the catalog is kept: "embedded" (a log in --data-dir, one server) or "etcd" (several servers over one etcd cluster; store)',
  },
  'etcd-endpoints': {
    type: 'string',
    array: true,
    describe:
      'etcd client URLs, comma-separated or repeated, e.g. https://10.0.0.5:2379 (etcd.endpoints)',
  },
  'etcd-prefix': {
    type: 'string',
    defaultDescription: '/trellis',
    describe: "Key prefix of this cluster's data in etcd (etcd.prefix)",
  },
  'etcd-ca-file': {
    type: 'string',
    describe: "PEM CA that signed etcd's certificates (etcd.ca_file; default: the system's roots)",
  },
  'etcd-cert-file': {
    type: 'string',
    describe: 'PEM client certificate for etcd (etcd.cert_file; with --etcd-key-file)',
  },
  'etcd-key-file': {
    type: 'string',
    describe: 'PEM private key of --etcd-cert-file (etcd.key_file)',
  },
  'etcd-username': {
    type: 'string',
    describe: 'etcd user (etcd.username); the password is read from $TRELLIS_ETCD_PASSWORD',
  },
  'ca-encryption-key-file': {
    type: 'string',
    describe:
      'With --store etcd: file with 32 random bytes in base64 (`openssl rand -base64 32`), the same on every server; CA private keys are stored in etcd encrypted with it (ca_encryption_key_file)',
  },
  'ca-encryption-previous-key-file': {
    type: 'string',
    array: true,
    describe:
      'While changing the encryption key: a key file CA keys may still be encrypted with; each such key is re-encrypted with --ca-encryption-key-file at start (repeatable; ca_encryption_previous_key_files)',
  },
} as const;

/** The API listeners' connection limits, on both daemons (limits.* in a config file). */
const HTTP_LIMIT_OPTIONS = {
  'http-max-conns-per-client': {
    type: 'number',
    describe:
      'Open API connections allowed from one client address, loopback included; more get a 429; 0: no limit (default 200; limits.http_max_conns_per_client)',
  },
  'http-handshake-timeout': {
    type: 'number',
    describe:
      'A new API connection must send its first request (HTTPS: finish TLS too) within this many ms; 0: no limit (default 5000; limits.http_handshake_timeout)',
  },
} as const;

/** Settings from the config dir, or exit code 2 after printing every file error. */
async function settingsOrExit(
  configDir: string | undefined,
  stderr: (s: string) => void,
): Promise<AgentSettings | number> {
  try {
    return await readSettings(configDir);
  } catch (err) {
    return configErrorExit(err, stderr);
  }
}

function logUnused(log: Logger, role: 'agent' | 'server', file: AgentSettings): void {
  const unused = unusedSettings(role, file);
  const other = role === 'agent' ? 'a server' : 'an agent';
  if (unused.length > 0) log.info({ settings: unused }, `settings only ${other} uses; ignored`);
}

/** The daemons' flags that may be given more than once (each use adds a value). */
const REPEATABLE_DAEMON_FLAGS: readonly string[] = [
  'server',
  'retry-join',
  'node-meta',
  'recursor',
  'etcd-endpoints',
  'ca-encryption-previous-key-file',
];

/**
 * A yargs check: any other flag given twice is refused (yargs would hand the daemon a list
 * where it expects one value, e.g. two --log-level flags).
 */
function onceEach(argv: Record<string, unknown>): true {
  for (const [k, v] of Object.entries(argv))
    if (Array.isArray(v) && k !== '_' && !/[A-Z]/.test(k) && !REPEATABLE_DAEMON_FLAGS.includes(k))
      throw new UsageError(`--${k} was given ${v.length} times; give it once`);
  return true;
}

function commonOptions(y: Argv<GlobalArgs>): Argv<DaemonArgs> {
  return y
    .check(onceEach)
    .option('node', {
      type: 'string',
      describe: 'Node name (default: node_name in --config-dir, else the hostname)',
    })
    .option('datacenter', {
      type: 'string',
      defaultDescription: DEFAULT_DATACENTER,
      describe: 'Datacenter name',
    })
    .option('data-dir', { type: 'string', describe: 'Directory for durable state' })
    .option('config-dir', {
      type: 'string',
      describe: 'Directory of service definitions and settings (*.hcl, *.json)',
    })
    .option('log-level', {
      type: 'string',
      defaultDescription: DEFAULT_LOG_LEVEL,
      choices: ['debug', 'info', 'warn', 'error'],
    }) as unknown as Argv<DaemonArgs>;
}

/** The daemons and the lab, added to the CLI's commands (exported for the CLI's tests). */
export function register(parser: Argv<GlobalArgs>, ctx: CliContext): Argv<GlobalArgs> {
  for (const daemon of ['server', 'agent', 'proxy', 'dev', 'demo-app'])
    ctx.commandPaths.add(daemon);
  return registerLab(parser, ctx)
    .command<DaemonArgs>({
      command: 'server',
      describe: 'Run a catalog server',
      builder: (y) =>
        commonOptions(y)
          .option('bind', {
            type: 'string',
            defaultDescription: DEFAULT_SERVER_BIND,
            describe: 'HTTP API listen address host:port',
          })
          .option('advertise', {
            type: 'string',
            describe: 'Address other hosts reach this server at',
          })
          .option('snapshot-every', {
            type: 'number',
            defaultDescription: '10000',
            describe: 'Snapshot after this many writes',
          })
          .option('session-min-ttl', {
            type: 'number',
            describe: 'Smallest session TTL accepted, in ms (default 10000)',
          })
          .option('node-grace', {
            type: 'number',
            describe:
              'Grace after start (or after taking over as leader) before silent nodes turn critical, ms (default 30000)',
          })
          .option('ca-clock-skew', {
            type: 'number',
            describe:
              'How far server and agent clocks may disagree, ms: a rotated-out CA root is kept this long after its last leaf expired (default 60000)',
          })
          .option('https-bind', {
            type: 'string',
            defaultDescription: '<bind host>:8501',
            describe: 'HTTPS API address (certificate from the mesh CA); "off" to disable',
          })
          .option('acl-default-policy', {
            choices: ['allow', 'deny'] as const,
            defaultDescription: 'deny',
            describe: 'What a token may do where no rule says (acl.default_policy)',
          })
          .option('virtual-ip-range', {
            type: 'string',
            defaultDescription: '240.0.0.0/4',
            describe:
              "IPv4 CIDR mesh services' virtual IPs come from (virtual_ip_range); must not overlap real networks",
          })
          .options(HTTP_LIMIT_OPTIONS)
          .options(ETCD_OPTIONS)
          .example('$0 server --data-dir /var/lib/trellis --bind 0.0.0.0:8500', 'A catalog server')
          .example(
            '$0 server --data-dir /var/lib/trellis --store etcd --etcd-endpoints https://10.0.0.5:2379,https://10.0.0.6:2379,https://10.0.0.7:2379 --etcd-ca-file /etc/trellis/etcd-ca.pem --ca-encryption-key-file /etc/trellis/ca-encryption.key',
            'One of several servers sharing an etcd cluster (docs/ha.md)',
          )
          .example('$0 server --config-dir /etc/trellis.d', 'Settings from /etc/trellis.d/*.hcl'),
      handler: action<DaemonArgs>(ctx, async (env, args) => {
        const configDir = args['config-dir'];
        const file = await settingsOrExit(configDir, env.io.stderr);
        if (typeof file === 'number') return file;
        const etcdPassword = env.io.env.TRELLIS_ETCD_PASSWORD;
        const flags = { ...givenFlags(args), etcdPasswordSet: etcdPassword !== undefined };
        const { logLevel, ...settings } = resolveServer(flags, file);
        const log = createLogger({ level: logLevel });
        logUnused(log, 'server', file);
        // A server that can no longer follow the etcd log stops (its supervisor restarts it).
        let onFatal: (err: Error) => void = () => undefined;
        const fatal = new Promise<Error>((resolve) => (onFatal = resolve));
        // Each daemon's code is loaded only when it runs: an agent carries no server modules.
        const { runServer } = await import('./server-command.js');
        let server;
        try {
          server = await runServer(
            {
              ...settings,
              ...(configDir ? { configDir } : {}),
              ...(args['https-bind'] ? { httpsBind: args['https-bind'] } : {}),
              ...(etcdPassword !== undefined ? { etcdPassword } : {}),
              onFatal: (err) => onFatal(err),
            },
            log,
          );
        } catch (err) {
          const hint = 'pick other addresses with --bind and --https-bind';
          return configErrorExit(addressInUse(err, hint) ?? err, env.io.stderr);
        }
        if (server.httpsAddress) env.io.stdout(`trellis server https on ${server.httpsAddress}\n`);
        env.io.stdout(`trellis server listening on ${server.address}\n`);
        const systemd = systemdNotifier(env.io.env, log);
        const running = { ...settings, logLevel };
        // Signals are handled before READY=1: systemd may stop the unit as soon as it is ready.
        const stopped = untilSignal(() => {
          void systemd.send('RELOADING=1');
          server.agent
            .reload()
            .then(() => logRestartNeeded(configDir, running, (f) => resolveServer(flags, f), log))
            .catch((err: unknown) =>
              log.error(
                { err: describeError(err) },
                'reload refused; the running configuration stays',
              ),
            )
            .finally(() => void systemd.send('READY=1'));
        });
        await systemd.send('READY=1', `STATUS=serving the API on ${server.address}`);
        const end = await Promise.race([stopped, fatal]);
        if (end instanceof Error) {
          stopped.cancel();
          env.io.stderr(`trellis server: ${end.message}\n`);
          await systemd.send('STOPPING=1');
          await server.close();
          return 1;
        }
        log.info({ signal: end }, 'shutting down');
        await systemd.send('STOPPING=1');
        await server.close();
      }),
    })
    .command<ProxyArgs>({
      command: 'proxy',
      describe:
        "Run the host's data plane: the sidecar proxies' listeners and workers, steered by the agent (--data-plane-socket)",
      builder: (y) =>
        y
          .option('socket', {
            type: 'string',
            default: DEFAULT_DATA_PLANE_SOCKET,
            describe: 'The unix socket the agent connects to (made with mode 0600)',
          })
          .check(onceEach)
          .option('proxy-workers', PROXY_WORKERS_OPTION)
          .option('drain-timeout', {
            type: 'string',
            defaultDescription: '30s',
            describe:
              'On SIGTERM the agent drains the host (or, with no agent connected, the proxies drain here); everything ends within this long',
          })
          .option('log-level', {
            type: 'string',
            defaultDescription: DEFAULT_LOG_LEVEL,
            choices: ['debug', 'info', 'warn', 'error'],
          })
          .example(
            '$0 proxy --socket /run/trellis/data-plane.sock',
            'The data plane; then: trellis agent --data-plane-socket /run/trellis/data-plane.sock ...',
          ) as unknown as Argv<ProxyArgs>,
      handler: action<ProxyArgs>(ctx, async (env, args) => {
        const log = createLogger({ level: (args['log-level'] as LogLevel) ?? DEFAULT_LOG_LEVEL });
        const drainTimeoutMs =
          durationFlag(args['drain-timeout'], 'drain-timeout') ?? DEFAULT_DRAIN_TIMEOUT_MS;
        const workers =
          numberFlag(args['proxy-workers'], 'proxy-workers', 1) ?? defaultProxyWorkers();
        const { runDataPlane, DataPlaneInUse } = await import('./proxy-command.js');
        let dp;
        try {
          dp = await runDataPlane({ socketPath: args.socket, workers }, log);
        } catch (err) {
          if (!(err instanceof DataPlaneInUse)) throw err;
          env.io.stderr(`${err.message}\n`);
          return 1;
        }
        env.io.stdout(`trellis proxy listening on ${args.socket}\n`);
        const systemd = systemdNotifier(env.io.env, log);
        const running = dp;
        const signal = untilSignal(() => {
          // SIGHUP: fresh workers (the code on disk, after an upgrade), nothing dropped.
          void systemd.send('RELOADING=1');
          log.info({ workers: running.workers.pids() }, 'replacing the proxy workers');
          running.workers
            .renew(drainTimeoutMs)
            .then(() => log.info({ workers: running.workers.pids() }, 'proxy workers replaced'))
            .catch((err: unknown) =>
              log.error({ err: describeError(err) }, 'replacing the proxy workers failed'),
            )
            .finally(() => void systemd.send('READY=1'));
        });
        await systemd.send('READY=1', `STATUS=data plane on ${args.socket}`);
        const sig = await signal;
        log.info({ signal: sig }, 'shutting down');
        await systemd.send('STOPPING=1');
        if (sig === 'SIGTERM') {
          const cut = await dp.drain(drainTimeoutMs);
          log.info({ cut }, 'drained');
        }
        await dp.close();
      }),
    })
    .command<DaemonArgs>({
      command: 'agent',
      describe: 'Run the per-host agent',
      builder: (y) =>
        commonOptions(y)
          .option('server', {
            alias: 'retry-join',
            type: 'string',
            array: true,
            describe: 'Server address host:port (repeatable; default: retry_join in --config-dir)',
          })
          .option('http-addr', {
            type: 'string',
            describe: 'The same as --bind (the address the CLI calls: --http-addr)',
          })
          .option('bind', {
            type: 'string',
            describe: `Local HTTP API address; the CLI on this host calls it (default: http_addr in --config-dir, else $TRELLIS_HTTP_ADDR or ${DEFAULT_HTTP_ADDR})`,
          })
          .option('token', {
            type: 'string',
            defaultDescription:
              'acl { tokens { agent } } in --config-dir, else $TRELLIS_HTTP_TOKEN',
            describe: "The agent's own ACL token",
          })
          .option('advertise', {
            type: 'string',
            defaultDescription: '127.0.0.1',
            describe: "This node's address in the catalog",
          })
          .option('enable-script-checks', {
            type: 'boolean',
            defaultDescription: 'false',
            describe: 'Allow checks that run commands',
          })
          .option('proxy-workers', PROXY_WORKERS_OPTION)
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
          .options(HTTP_LIMIT_OPTIONS)
          .option('join-token', {
            type: 'string',
            describe:
              'Join the cluster with this single-use token (needs --ca-fingerprint; or env TRELLIS_JOIN_TOKEN, which ps does not show)',
          })
          .option('metrics-bind', {
            type: 'string',
            describe:
              'Serve Prometheus metrics at http://ADDR/metrics, no token (default: metrics_addr in --config-dir, else off)',
          })
          .option('dns-bind', {
            type: 'string',
            describe:
              'Answer DNS for .consul names here, UDP and TCP; off: nowhere (default: dns_addr in --config-dir, else 127.0.0.1:8600)',
          })
          .option('recursor', {
            type: 'string',
            array: true,
            describe:
              'DNS server (ip[:port]) for names outside the mesh domain, tried in order (repeatable; default: recursors in --config-dir)',
          })
          .option('ca-fingerprint', {
            type: 'string',
            describe: "SHA-256 fingerprint of the cluster's CA, pinned while joining",
          })
          .command(agentDrainCommand(ctx) as unknown as CommandModule<DaemonArgs, DaemonArgs>)
          .option('drain-timeout', {
            type: 'string',
            defaultDescription: '30s',
            describe:
              'On SIGTERM, drain the host first (see trellis agent drain): everything ends within this long',
          })
          .option('drain-grace', {
            type: 'string',
            defaultDescription: '2s',
            describe:
              'While draining, how long the sidecars keep serving after the catalog marked the host critical',
          })
          .option('data-plane-socket', {
            type: 'string',
            defaultDescription: 'data_plane_socket in --config-dir, else none',
            describe:
              'Run the sidecar proxies in the data-plane supervisor (trellis proxy) at this unix socket; it outlives the agent, so restarting the agent drops no connection (SIGTERM then stops only the agent)',
          })
          .example(
            '$0 agent --server 198.18.0.10:8500 --node web-1 --data-dir /var/lib/trellis --config-dir /etc/trellis.d',
            'An agent',
          )
          .example('$0 agent --config-dir /etc/trellis.d', 'Settings from /etc/trellis.d/*.hcl'),
      handler: action<DaemonArgs>(ctx, async (env, args) => {
        const configDir = args['config-dir'];
        const file = await settingsOrExit(configDir, env.io.stderr);
        if (typeof file === 'number') return file;
        const flags = givenFlags(args);
        const httpAddrDefault = env.io.env.TRELLIS_HTTP_ADDR || DEFAULT_HTTP_ADDR;
        const resolve = (f: AgentSettings) => resolveAgent(flags, f, httpAddrDefault);
        const token = args.token ?? env.io.env.TRELLIS_HTTP_TOKEN;
        const joinToken = args['join-token'] ?? env.io.env.TRELLIS_JOIN_TOKEN;
        const drainTimeoutMs =
          durationFlag(args['drain-timeout'], 'drain-timeout') ?? DEFAULT_DRAIN_TIMEOUT_MS;
        const drainGraceMs =
          durationFlag(args['drain-grace'], 'drain-grace') ?? DEFAULT_DRAIN_GRACE_MS;
        const { logLevel, ...settings } = resolve(file);
        const log = createLogger({ level: logLevel });
        logUnused(log, 'agent', file);
        const { runAgent } = await import('./agent-command.js');
        let running;
        try {
          running = await runAgent(
            {
              ...settings,
              ...(configDir ? { configDir } : {}),
              // From the environment too: a flag's value shows in `ps` to every local user.
              ...(joinToken ? { joinToken } : {}),
              ...(args['ca-fingerprint'] ? { caFingerprint: args['ca-fingerprint'] } : {}),
              ...(token || settings.fileToken ? { token: token || settings.fileToken } : {}),
            },
            log,
          );
        } catch (err) {
          const hint = 'pick other addresses with --bind, --dns-bind and --metrics-bind';
          return configErrorExit(addressInUse(err, hint) ?? err, env.io.stderr);
        }
        if (running.dnsAddress) env.io.stdout(`trellis agent dns on ${running.dnsAddress}\n`);
        if (running.metricsAddress)
          env.io.stdout(`trellis agent metrics on http://${running.metricsAddress}/metrics\n`);
        env.io.stdout(`trellis agent listening on ${running.address}\n`);
        // runAgent resolved once the restored rules and saved plans are in force.
        const systemd = systemdNotifier(env.io.env, log);
        const agent = running.agent;
        const atStart = { ...settings, logLevel };
        const signal = untilSignal(() => {
          void systemd.send('RELOADING=1');
          agent
            .reload()
            .then(() => logRestartNeeded(configDir, atStart, resolve, log))
            .catch((err: unknown) => {
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
            })
            .finally(() => void systemd.send('READY=1'));
        });
        const drain = { timeoutMs: drainTimeoutMs, graceMs: drainGraceMs };
        // `systemctl stop trellis-proxy`: the host leaves the mesh the way a drain does.
        agent.dataPlane?.onDrainRequested(() => {
          log.info({}, 'the data plane is stopping: draining the host');
          void agent.drainThenExit(drain);
        });
        // Signals are handled before READY=1: systemd may stop the unit as soon as it is ready.
        await systemd.send('READY=1', `STATUS=agent API on ${running.address}`);
        // A drain through the API (trellis agent drain) ends the agent as a signal does.
        const sig = await Promise.race([signal, agent.exitRequested.then(() => 'drain')]);
        signal.cancel();
        log.info({ signal: sig }, 'shutting down');
        await systemd.send('STOPPING=1');
        // With a data-plane supervisor a signal stops only the control plane: the proxies keep
        // serving and the node stays in the catalog for the agent that comes back (a restart or
        // an upgrade). Without one, SIGTERM drains the host.
        const keepDataPlane = agent.dataPlane !== undefined && sig !== 'drain';
        if (sig === 'SIGTERM' && !keepDataPlane) {
          const r = await agent.drainThenExit(drain);
          log.info({ marked: r.marked, cut: r.cut }, 'drained');
        }
        if (keepDataPlane)
          log.info({ dataPlane: agent.dataPlane?.pid }, 'the data plane keeps serving');
        await running.close({ leave: !keepDataPlane });
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
          .option('acl-default-policy', {
            choices: ['allow', 'deny'] as const,
            defaultDescription: 'ACLs off',
            describe: 'Turn ACLs on, with this default for what no rule says',
          })
          .option('https-bind', {
            type: 'string',
            defaultDescription: 'off',
            describe: 'Also serve HTTPS (mesh CA certificate) on this address',
          })
          .option('proxy-workers', PROXY_WORKERS_OPTION)
          .option('demo', {
            type: 'boolean',
            default: true,
            describe: 'Register the demo service (--no-demo: do not)',
          })
          .example('$0 dev', 'Start a development cluster on 127.0.0.1:8500'),
      handler: action<DaemonArgs>(ctx, async (env, args) => runDev(env.io.stdout, args)),
    });
}

async function runDev(stdout: (s: string) => void, args: DaemonArgs): Promise<number> {
  // dev takes no settings from --config-dir files: it always runs with its own fixed ones.
  const log: Logger = createLogger({ level: args['log-level'] ?? DEFAULT_LOG_LEVEL });
  const tempData = args['data-dir'] === undefined;
  const dataDir = args['data-dir'] ?? mkdtempSync(join(tmpdir(), 'trellis-dev-'));
  // Listening from the start: Ctrl-C while starting still stops cleanly and removes the data.
  let reload = (): void => undefined;
  const stopped = untilSignal(() => reload());
  try {
    const { runServer } = await import('./server-command.js');
    const running = await runServer(
      {
        dataDir,
        datacenter: args.datacenter ?? DEFAULT_DATACENTER,
        node: args.node ?? 'dev',
        bind: args.bind ?? '127.0.0.1:8500',
        advertise: '127.0.0.1',
        sessionMinTtlMs: 1000,
        // Dev mode is for trying things: ACLs are off (every token ignored, as a Consul dev
        // agent does) unless --acl-default-policy turns them on.
        aclEnabled: args['acl-default-policy'] !== undefined,
        aclDefaultPolicy: args['acl-default-policy'] ?? 'allow',
        // Like Consul's dev agent, plain HTTP only unless asked (port 8501 may well be taken).
        httpsBind: args['https-bind'] ?? 'off',
        ...(args['config-dir'] ? { configDir: args['config-dir'] } : {}),
        ...(args['proxy-workers'] !== undefined
          ? { proxyWorkers: numberFlag(args['proxy-workers'], 'proxy-workers', 0) ?? 0 }
          : {}),
      },
      log,
    ).catch((err: unknown) => {
      throw addressInUse(err, 'pick another address with --bind') ?? err;
    });
    const agent = running.agent;
    reload = () =>
      void agent
        .reload()
        .catch((err: unknown) => log.error({ err: describeError(err) }, 'reload failed'));
    if (args.demo !== false && !agent.local.services.has('demo')) {
      agent.local.addService(
        { Name: 'demo', ID: 'demo', Port: 8080, Tags: ['demo'], Meta: { purpose: 'try trellis' } },
        'api',
      );
    }
    stdout(
      `trellis dev ready on http://${running.address} (data in ${dataDir})\n` +
        `  try: trellis catalog services\n        trellis kv put hello world && trellis kv get hello\n`,
    );
    await stopped;
    await running.close();
    return 0;
  } finally {
    stopped.cancel();
    if (tempData) rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A listen that failed because the address is taken, as a sentence saying what to do. */
function addressInUse(err: unknown, hint: string): Error | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code !== 'EADDRINUSE') return undefined;
  const where = e.address !== undefined ? `${e.address}:${e.port}` : 'an address';
  return new Error(`${where} is already in use (another trellis?): stop it, or ${hint}`);
}

/** Runs the command line of this process; the process exits with the code it sets. */
async function main(): Promise<void> {
  const controller = new AbortController();
  // First Ctrl-C ends long-running commands (watch) cleanly; a second one exits at once.
  let interrupts = 0;
  const onInterrupt = (): void => {
    if (++interrupts > 1) process.exit(130);
    controller.abort();
  };
  const daemon = ['server', 'agent', 'proxy', 'dev', 'demo-app'].includes(process.argv[2] ?? '');
  if (!daemon) process.on('SIGINT', onInterrupt);
  process.exitCode = await runCli(
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
}

// Run only as the program (also through npm's bin symlink), not when a test imports register.
const entry = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url)) await main();
