/** trellis acl token list: every token (accessor IDs, never secrets). */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { show } from '../../../views.js';
import { tokenTable } from '../views.js';

interface Args {
  policy?: string;
}

export function tokenListCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'list',
    describe: 'List the tokens',
    builder: (y) =>
      y
        .option('policy', {
          type: 'string',
          requiresArg: true,
          describe: 'Only tokens linked to this policy ID',
        })
        .example('$0 acl token list', 'Every token')
        .example('$0 acl token list --format json', 'As JSON'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.acl.tokenList({ policy: args.policy, signal: env.signal });
      show(env, value, () => tokenTable(value));
    }),
  };
}
