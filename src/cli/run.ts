/**
 * Builds the `trellis` parser and runs one command line. Nothing here exits the process:
 * runCli returns the exit code, and bin/trellis.ts decides what to do with it.
 */
import { readFile } from 'node:fs/promises';
import yargs, { type Argv } from 'yargs';
import { createClient } from '../client/index.js';
import { parseServiceDefinitions } from '../config/index.js';
import { aclCommand } from './commands/acl/index.js';
import { catalogCommand } from './commands/catalog/index.js';
import { configCommand } from './commands/config/index.js';
import { caCommand } from './commands/ca/index.js';
import { dnsCommand } from './commands/dns/index.js';
import { healthCommand } from './commands/health/index.js';
import { intentionCommand } from './commands/intention/index.js';
import { kvCommand } from './commands/kv/index.js';
import { membersCommand } from './commands/members/list.js';
import { redirectTrafficCommand } from './commands/redirect/index.js';
import { servicesCommand } from './commands/services/index.js';
import { snapshotCommand } from './commands/snapshot/index.js';
import { watchCommand } from './commands/watch/index.js';
import { report, type CliContext, type CliDeps, type CliIo, type GlobalArgs } from './context.js';
import { UsageError } from './exit.js';
import { version } from './version.js';

export { DEFAULT_HTTP_ADDR } from './client-flags.js';

export interface CliOptions {
  /**
   * Adds commands next to the built-in ones (bin adds server, agent, dev). Type each module
   * as `CommandModule<GlobalArgs, GlobalArgs & Args>` and wrap its handler with
   * `action<Args>(ctx, body)` to get the same error reporting and exit codes:
   *   register: (y, ctx) => y.command(serverCommand(ctx))
   */
  register?: (parser: Argv<GlobalArgs>, ctx: CliContext) => Argv<GlobalArgs>;
  /** Replaces collaborators; for tests. */
  deps?: Partial<CliDeps>;
}

/** The configured parser and the context its commands report into. */
export function buildCli(
  io: CliIo,
  opts: CliOptions = {},
): { parser: Argv<GlobalArgs>; ctx: CliContext } {
  const ctx: CliContext = {
    io,
    deps: { createClient, parseServiceDefinitions, readFile: (p) => readFile(p), ...opts.deps },
    exitCode: 0,
    commandPaths: new Set(),
    argv: [],
  };
  // The client flags belong to the commands that call an API (clientFlags below), not to
  // the daemons and the lab, where they would do nothing.
  const base = yargs().scriptName('trellis').usage('$0 <command> [options]') as Argv<GlobalArgs>;
  let parser = base
    .command(servicesCommand(ctx))
    .command(catalogCommand(ctx))
    .command(healthCommand(ctx))
    .command(kvCommand(ctx))
    .command(membersCommand(ctx))
    .command(watchCommand(ctx))
    .command(aclCommand(ctx))
    .command(intentionCommand(ctx))
    .command(configCommand(ctx))
    .command(caCommand(ctx))
    .command(snapshotCommand(ctx))
    .command(dnsCommand(ctx))
    .command(redirectTrafficCommand(ctx));
  if (opts.register) parser = opts.register(parser, ctx);
  parser = parser
    .example('$0 catalog services', 'List the services in the catalog')
    .example('$0 kv put config/web/port 8080 --http-addr 10.0.0.5:8500', 'Write to another server')
    .epilogue(
      'Commands that call the API take --http-addr, --token and --format (see their --help).\n' +
        'Exit codes: 0 ok, 1 failure, 2 usage or configuration error.',
    )
    .demandCommand(1, 'Missing command')
    .strict()
    .strictCommands()
    .recommendCommands()
    .exitProcess(false)
    .wrap(100)
    .help()
    .alias('help', 'h')
    .version('version', 'Show the version of trellis', version)
    .fail((msg, err) => {
      // Validation failures arrive as msg; anything else is rethrown unchanged.
      if (err) throw err;
      throw new UsageError(
        unknownArguments(msg, ctx.argv).replace(
          /^Did you mean (.*)\?$/,
          'Unknown command; did you mean "$1"?',
        ),
      );
    });
  return { parser, ctx };
}

/**
 * yargs names an unknown flag twice (`http-addr, httpAddr`); name it once. A daemon given a
 * client flag is told where its own address is set.
 */
function unknownArguments(msg: string, argv: readonly string[]): string {
  const m = /^Unknown arguments?: (.*)$/.exec(msg);
  if (!m) return msg;
  const given = m[1]!.split(', ');
  const names = given.filter((n) => !/[A-Z]/.test(n) || !given.includes(kebab(n)));
  const command = argv[0];
  const hint =
    names.includes('http-addr') && (command === 'dev' || command === 'server')
      ? ` (trellis ${command} listens where --bind says)`
      : '';
  return `Unknown argument${names.length > 1 ? 's' : ''}: ${names.join(', ')}${hint}`;
}

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Runs one command line and resolves to its exit code. */
export async function runCli(argv: string[], io: CliIo, opts: CliOptions = {}): Promise<number> {
  const { parser, ctx } = buildCli(io, opts);
  ctx.argv = argv;
  let output = '';
  try {
    // With a callback yargs hands help text back instead of printing it itself.
    await parser.parseAsync(argv, {}, (_err, _args, text) => {
      output = text;
    });
  } catch (err) {
    return report(ctx, err, commandPath(argv, ctx.commandPaths));
  }
  if (output) io.stdout(output.endsWith('\n') ? output : `${output}\n`);
  return ctx.exitCode;
}

/** The longest known command path the words of argv spell ("kv put"). */
function commandPath(argv: readonly string[], paths: ReadonlySet<string>): string {
  const words: string[] = [];
  for (const token of argv) {
    if (token.startsWith('-')) continue;
    if (!paths.has([...words, token].join(' '))) break;
    words.push(token);
  }
  return words.join(' ');
}
