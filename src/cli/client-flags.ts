/**
 * The client flags (--http-addr, --token, --format): added by each command that calls an API or
 * prints results, so the daemons and the lab neither show nor accept flags they would ignore.
 */
import type { Argv } from 'yargs';
import type { CliIo } from './context.js';
import type { OutputFormat } from './output.js';

export const DEFAULT_HTTP_ADDR = '127.0.0.1:8500';

const FORMATS: readonly OutputFormat[] = ['table', 'json'];

/** Which of the client flags a command takes: all three, or only --format. */
export type ClientFlagSet = 'api' | 'format';

/**
 * Adds the client flags to a command (and, from a group, to its verbs): --http-addr and
 * --token for commands that call an API, --format for any that prints results.
 */
export function clientFlags<T>(y: Argv<T>, io: CliIo, set: ClientFlagSet = 'api'): Argv<T> {
  const withFormat = y.option('format', {
    choices: FORMATS,
    default: 'table' as OutputFormat,
    describe: 'Output format',
  });
  if (set === 'format') return withFormat as unknown as Argv<T>;
  return withFormat
    .option('http-addr', {
      type: 'string',
      default: io.env.TRELLIS_HTTP_ADDR || DEFAULT_HTTP_ADDR,
      defaultDescription: `$TRELLIS_HTTP_ADDR or ${DEFAULT_HTTP_ADDR}`,
      describe: 'API address(es), host:port or URL; comma-separated ones are tried in order',
      requiresArg: true,
    })
    .option('token', {
      type: 'string',
      // Shown by name only, so --help never prints a secret.
      default: io.env.TRELLIS_HTTP_TOKEN,
      defaultDescription: '$TRELLIS_HTTP_TOKEN',
      describe: 'ACL token sent as X-Consul-Token',
      requiresArg: true,
    }) as unknown as Argv<T>;
}
