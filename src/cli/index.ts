/**
 * cli: the `trellis` command line (yargs), one file per verb under commands/<noun>/<verb>.ts.
 *
 *   runCli(argv, io) -> buildCli: global flags (--http-addr, --token, --format) + commands
 *     -> action(ctx, body): lazily made client, body prints via io, returns an exit code
 *     -> errors: one "Error: ..." line on stderr, exit 1 (failure) or 2 (usage/config)
 *
 * 1. Everything the process offers (stdout, stderr, env, stdin, an interrupt signal) comes in
 *    through CliIo; nothing here reads process.* or exits.
 * 2. Tables for people (output.ts), pretty JSON with --format json.
 * 3. bin/trellis.ts adds its own commands with the `register` hook of runCli/buildCli.
 *
 * Imports only src/core, src/api, src/config, src/client, node builtins and yargs.
 */
export { buildCli, runCli, DEFAULT_HTTP_ADDR, type CliOptions } from './run.js';
export {
  action,
  clientOptions,
  type CliContext,
  type CliDeps,
  type CliIo,
  type CommandBody,
  type CommandEnv,
  type GlobalArgs,
  type ServiceDefinitionParser,
} from './context.js';
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, errorLine, exitCodeFor } from './exit.js';
export { formatJson, formatJsonLine, formatTable, type OutputFormat } from './output.js';
export { groupCommand, type GroupSpec } from './commands/group.js';
export { clientFlags, type ClientFlagSet } from './client-flags.js';
