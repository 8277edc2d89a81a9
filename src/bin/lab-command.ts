/**
 * `trellis lab up|down|status|exec` (src/lab) and `trellis demo-app`, the lab's demo
 * application (hidden from --help). The lab runs this same binary in its namespaces.
 */
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import {
  action,
  clientFlags,
  groupCommand,
  UsageError,
  type CliContext,
  type GlobalArgs,
} from '../cli/index.js';
import {
  DEFAULT_HOSTS,
  DEFAULT_LAB_NAME,
  DEFAULT_SERVERS,
  formatStatus,
  hostsProblem,
  labDown,
  labExec,
  labNameProblem,
  labStatus,
  labUp,
  MAX_HOSTS,
  parseListen,
  serversProblem,
  startDemoApp,
  STATE_ROOT,
  type LabOptions,
} from '../lab/index.js';

interface LabArgs {
  name?: string;
  'state-dir'?: string;
}

/** [node, this file's trellis.js]: how the lab starts trellis inside its namespaces. */
function trellisCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('./trellis.js', import.meta.url))];
}

function labOptions(args: LabArgs, ctx: CliContext): LabOptions {
  if (args.name !== undefined) {
    const problem = labNameProblem(args.name);
    if (problem) throw new UsageError(problem);
  }
  return {
    ...(args.name !== undefined ? { name: args.name } : {}),
    ...(args['state-dir'] !== undefined ? { stateDir: args['state-dir'] } : {}),
    trellis: trellisCommand(),
    out: (line) => ctx.io.stdout(`${line}\n`),
    ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
  };
}

function labFlags<T>(y: Argv<T>): Argv<T & LabArgs> {
  return y
    .option('name', {
      type: 'string',
      requiresArg: true,
      defaultDescription: `${DEFAULT_LAB_NAME}, or the lab that is up`,
      describe: 'Lab name: the prefix of its namespaces',
    })
    .option('state-dir', {
      type: 'string',
      requiresArg: true,
      defaultDescription: `${STATE_ROOT}/<name>`,
      describe: 'Where lab.json, logs, data and config dirs are kept',
    }) as unknown as Argv<T & LabArgs>;
}

interface UpArgs {
  hosts: number;
  servers: number;
}

function upCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & LabArgs & UpArgs> {
  return {
    command: 'up',
    describe: 'Create the namespaces and start a server, agents and demo apps',
    builder: (y) =>
      labFlags(y)
        .option('hosts', {
          type: 'number',
          default: DEFAULT_HOSTS,
          requiresArg: true,
          describe: `App hosts (1-${MAX_HOSTS}): app1 runs web, the others api`,
        })
        .option('servers', {
          type: 'number',
          default: DEFAULT_SERVERS,
          requiresArg: true,
          describe:
            'Servers: 1 (embedded store) or 3 (three servers over a three-member etcd, one member per server host; needs the etcd binary)',
        })
        .example('$0 lab up', 'As root: a server and three app hosts')
        .example('$0 lab up --servers 3', 'As root: three servers on etcd and three app hosts'),
    handler: action<LabArgs & UpArgs>(ctx, async (_env, args) => {
      const problem = hostsProblem(args.hosts) ?? serversProblem(args.servers);
      if (problem) throw new UsageError(problem);
      await labUp({ ...labOptions(args, ctx), hosts: args.hosts, servers: args.servers });
    }),
  };
}

function downCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & LabArgs> {
  return {
    command: 'down',
    describe: 'Stop every lab process, delete its namespaces, users and state',
    builder: (y) => labFlags(y),
    handler: action<LabArgs>(ctx, async (env, args) => {
      const r = await labDown(labOptions(args, ctx));
      env.io.stdout(
        r.found
          ? `lab ${r.name} is down (${r.processesStopped} processes stopped, ${r.namespacesDeleted.length} namespaces deleted)\n`
          : `lab ${r.name} is not up; nothing to do\n`,
      );
    }),
  };
}

function statusCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & LabArgs> {
  return {
    command: 'status',
    describe: 'Hosts, namespaces, processes and the catalog of the lab',
    builder: (y) => clientFlags(labFlags(y), ctx.io, 'format'),
    handler: action<LabArgs>(ctx, async (env, args) => {
      const status = await labStatus(labOptions(args, ctx));
      env.io.stdout(
        env.format === 'json' ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status),
      );
    }),
  };
}

interface ExecArgs extends LabArgs {
  host: string;
  user?: string;
  cmd?: (string | number)[];
}

function execCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & ExecArgs> {
  return {
    command: 'exec <host> [cmd..]',
    describe: "Run a command in a host's namespace (put it after --)",
    builder: (y) =>
      labFlags(y)
        .positional('host', { type: 'string', demandOption: true, describe: 'server, app1, ...' })
        .positional('cmd', { type: 'string', array: true, describe: 'The command and its args' })
        .option('user', {
          type: 'string',
          requiresArg: true,
          describe: 'Run as this unix user (e.g. trellis-web) instead of root',
        })
        .example('$0 lab exec app2 -- ip -br addr', "As root: app2's addresses")
        .example(
          '$0 lab exec app1 --user trellis-web -- curl -s http://api.service.consul/',
          'As root: call api from web',
        ) as unknown as Argv<GlobalArgs & ExecArgs>,
    handler: action<ExecArgs>(ctx, async (_env, args) => {
      // Words after "--" verbatim (yargs would read their flags); else the positional words.
      const dash = ctx.argv.indexOf('--');
      const argv = dash >= 0 ? ctx.argv.slice(dash + 1) : (args.cmd ?? []).map(String);
      if (argv.length === 0) throw new UsageError('nothing to run: put the command after --');
      return labExec(labOptions(args, ctx), args.host, argv, {
        ...(args.user !== undefined ? { user: args.user } : {}),
      });
    }),
  };
}

interface DemoArgs {
  name: string;
  listen: string;
  host?: string;
}

function demoAppCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & DemoArgs> {
  return {
    command: 'demo-app',
    describe: false, // the lab's demo application; not for general use
    builder: (y) =>
      y
        .option('name', { type: 'string', demandOption: true, requiresArg: true })
        .option('listen', { type: 'string', demandOption: true, requiresArg: true })
        .option('host', { type: 'string', requiresArg: true }) as unknown as Argv<
        GlobalArgs & DemoArgs
      >,
    handler: action<DemoArgs>(ctx, async (env, args) => {
      try {
        parseListen(args.listen);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const { hostname } = await import('node:os');
      const app = await startDemoApp({
        name: args.name,
        listen: args.listen,
        host: args.host ?? hostname(),
      });
      env.io.stdout(`demo-app ${args.name} listening on ${app.address}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await app.close();
    }),
  };
}

/** Adds `lab` and `demo-app` to the trellis parser. */
export function registerLab(parser: Argv<GlobalArgs>, ctx: CliContext): Argv<GlobalArgs> {
  return parser
    .command(
      groupCommand(ctx, {
        name: 'lab',
        describe: 'A multi-host mesh on this machine, in network namespaces (needs root)',
        example: ['$0 lab up', 'As root: start a server and three app hosts'],
        clientFlags: 'none',
        verbs: (add) => {
          add(upCommand(ctx));
          add(downCommand(ctx));
          add(statusCommand(ctx));
          add(execCommand(ctx));
        },
      }),
    )
    .command(demoAppCommand(ctx));
}
