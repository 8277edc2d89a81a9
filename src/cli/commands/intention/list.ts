/** trellis intention list: every intention, in evaluation order. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { show } from '../../views.js';
import { intentionTable } from './views.js';

interface Args {
  filter?: string;
}

export function intentionListCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'list',
    describe: 'List every intention',
    builder: (y) =>
      y
        .option('filter', {
          type: 'string',
          requiresArg: true,
          describe: 'Server-side filter expression',
        })
        .example('$0 intention list', 'Every intention')
        .example(
          `$0 intention list --filter 'DestinationName == "api"'`,
          'Only those protecting api',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.connect.intentionList({
        filter: args.filter,
        signal: env.signal,
      });
      show(env, value, () => intentionTable(value));
    }),
  };
}
