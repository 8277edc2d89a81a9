/** trellis kv list [PREFIX]: key names under a prefix, optionally one level deep. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatJson } from '../../output.js';

interface Args {
  prefix?: string;
  separator?: string;
}

export function kvListCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'list [prefix]',
    describe: 'List the keys under a prefix',
    builder: (y) =>
      y
        .positional('prefix', { type: 'string', describe: 'Key prefix (all keys when omitted)' })
        .option('separator', {
          type: 'string',
          describe: 'Stop at the first separator after the prefix, listing "folders" once',
        })
        .example('$0 kv list config/', 'Every key under config/')
        .example('$0 kv list config/ --separator /', 'One level under config/'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.kv.keys(args.prefix ?? '', args.separator);
      env.io.stdout(
        env.format === 'json' ? formatJson(value) : value.map((k) => `${k}\n`).join(''),
      );
    }),
  };
}
