/**
 * What every command gets: the process edges (io), the global flags, and a lazily made
 * client. `action()` wraps a command body so errors become one stderr line and an exit code.
 */
import type { CheckRegistration, ServiceRegistration } from '../api/index.js';
import type { ClientOptions, TrellisClient } from '../client/index.js';
import { EXIT_OK, UsageError, errorLine, exitCodeFor } from './exit.js';
import type { OutputFormat } from './output.js';

/** The process edges, passed in so the CLI runs the same in tests and in bin/trellis. */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Environment variables (TRELLIS_HTTP_ADDR, TRELLIS_HTTP_TOKEN). */
  env: Record<string, string | undefined>;
  /** Where `kv put KEY -` reads its value; bin passes process.stdin. */
  stdin?: AsyncIterable<string | Buffer>;
  /** Ends long-running commands (watch); bin aborts it on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

/**
 * The client flags (client-flags.ts). Only commands that call an API or print results add
 * them; the daemons' and the lab's handlers must not read them.
 */
export interface GlobalArgs {
  httpAddr: string;
  token?: string;
  format: OutputFormat;
}

export interface ConfigDiagnosticLike {
  file: string;
  line: number;
  column: number;
  key: string;
  message: string;
}

/** The signature of src/config's parseServiceDefinitions. */
export type ServiceDefinitionParser = (
  text: string,
  fileName: string,
) => {
  services: ServiceRegistration[];
  checks: CheckRegistration[];
  errors: ConfigDiagnosticLike[];
};

/** Collaborators a test may replace. */
export interface CliDeps {
  createClient: (opts: ClientOptions) => TrellisClient;
  parseServiceDefinitions: ServiceDefinitionParser;
  readFile: (path: string) => Promise<Buffer>;
}

export interface CliContext {
  io: CliIo;
  deps: CliDeps;
  /** Set by the command that ran. */
  exitCode: number;
  /** Full command paths ("kv put"), for pointing usage errors at the right --help. */
  commandPaths: Set<string>;
  /** The command line as given, for the few things yargs does not keep (a bare "-"). */
  argv: readonly string[];
}

/** What a command body works with. */
export interface CommandEnv {
  io: CliIo;
  deps: CliDeps;
  format: OutputFormat;
  /** Made on first use, so commands that fail validation never open connections. */
  readonly client: TrellisClient;
  /** Aborted when the user interrupts; never aborted when io has no signal. */
  signal: AbortSignal;
  /** The command line as given. */
  argv: readonly string[];
}

/** A command body: returns the exit code (0 when nothing is returned). */
export type CommandBody<A> = (env: CommandEnv, args: A & GlobalArgs) => Promise<number | void>;

/** Client options from the global flags; --http-addr may list several addresses. */
export function clientOptions(args: GlobalArgs): ClientOptions {
  const addresses = String(args.httpAddr)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (addresses.length === 0) throw new UsageError('--http-addr is empty');
  return { addresses, token: args.token || undefined };
}

/** Wraps a command body for yargs: runs it, reports errors, records the exit code. */
export function action<A>(
  ctx: CliContext,
  body: CommandBody<A>,
): (args: A & GlobalArgs) => Promise<void> {
  return async (args) => {
    let client: TrellisClient | undefined;
    const env: CommandEnv = {
      io: ctx.io,
      deps: ctx.deps,
      format: args.format ?? 'table',
      get client() {
        client ??= ctx.deps.createClient(clientOptions(args));
        return client;
      },
      signal: ctx.io.signal ?? new AbortController().signal,
      argv: ctx.argv,
    };
    try {
      ctx.exitCode = (await body(env, args)) ?? EXIT_OK;
    } catch (err) {
      ctx.exitCode = report(ctx, err, commandWords(args));
    } finally {
      await client?.close();
    }
  };
}

/** Prints the error line (plus a --help pointer for usage errors) and returns the exit code. */
export function report(ctx: CliContext, err: unknown, command: string): number {
  ctx.io.stderr(`${errorLine(err)}\n`);
  if (err instanceof UsageError) {
    ctx.io.stderr(`Run "trellis ${command ? `${command} ` : ''}--help" for usage.\n`);
  }
  return exitCodeFor(err);
}

/** The command words yargs consumed ("kv put"). */
function commandWords(args: object): string {
  const words = (args as { _?: unknown[] })._ ?? [];
  return words.map(String).join(' ');
}
