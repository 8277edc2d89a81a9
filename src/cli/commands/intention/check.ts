/**
 * trellis intention check SRC DST [--path P] [--method M] [--header 'Name: value']...: would
 * the connection (or, with --path, the HTTP request) be allowed, and what decides it.
 * Exit codes as Consul's: 0 allowed, 1 denied, 2 for usage errors and failed checks.
 */
import type { CommandModule } from 'yargs';
import type { IntentionCheckResult } from '../../../api/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, errorLine } from '../../exit.js';
import { formatJson } from '../../output.js';
import { decisionText } from './views.js';

interface Args {
  source: string;
  destination: string;
  path?: string;
  method?: string;
  header?: string | string[];
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function intentionCheckCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'check <source> <destination>',
    describe: 'Check whether source may connect to (or send this request to) destination',
    builder: (y) =>
      y
        .positional('source', { type: 'string', demandOption: true, describe: 'Source service' })
        .positional('destination', {
          type: 'string',
          demandOption: true,
          describe: 'Destination service',
        })
        .option('path', {
          type: 'string',
          requiresArg: true,
          describe: 'Check an HTTP request for this path (L7)',
        })
        .option('method', {
          type: 'string',
          requiresArg: true,
          describe: 'HTTP method of the request',
        })
        .option('header', {
          type: 'string',
          requiresArg: true,
          describe: '"Name: value" header of the request (repeatable)',
        })
        .example('$0 intention check web api', 'May web connect to api?')
        .example(
          `$0 intention check web api --path /admin --method POST --header 'x-user: bob'`,
          'Would this HTTP request be allowed?',
        )
        .epilogue('Exit codes: 0 allowed, 1 denied, 2 usage error or the check failed.'),
    handler: action<Args>(ctx, async (env, args) => {
      const headers = parseHeaders(args.header);
      const method = args.method?.trim();
      if (method !== undefined && !TOKEN_RE.test(method)) {
        throw new UsageError(`--method "${args.method}" is not an HTTP method`);
      }
      if (args.path !== undefined && !args.path.startsWith('/')) {
        throw new UsageError(`--path must start with "/", got "${args.path}"`);
      }
      let result: IntentionCheckResult;
      try {
        ({ value: result } = await env.client.connect.intentionCheck(
          args.source,
          args.destination,
          { path: args.path, method: method?.toUpperCase(), headers },
          { signal: env.signal },
        ));
      } catch (err) {
        // Consul's check exits 2 on every failure, so 1 always means "denied".
        env.io.stderr(`${errorLine(err)}\n`);
        return EXIT_USAGE;
      }
      if (env.format === 'json') {
        env.io.stdout(formatJson(result));
      } else {
        const why = decisionText(result, args.source, args.destination);
        env.io.stdout(
          `${result.Allowed ? 'Allowed' : 'Denied'}\n${why ? `  decided by ${why}\n` : ''}`,
        );
      }
      return result.Allowed ? EXIT_OK : EXIT_FAILURE;
    }),
  };
}

/** "Name: value" flags into a header map; a repeated name keeps the last value. */
function parseHeaders(flags: string | string[] | undefined): Record<string, string> | undefined {
  if (flags === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const flag of typeof flags === 'string' ? [flags] : flags) {
    const colon = flag.indexOf(':');
    const name = colon < 0 ? '' : flag.slice(0, colon).trim();
    if (colon < 0 || !TOKEN_RE.test(name)) {
      throw new UsageError(`--header "${flag}": expected "Name: value", such as "x-user: bob"`);
    }
    out[name.toLowerCase()] = flag.slice(colon + 1).trim();
  }
  return out;
}
