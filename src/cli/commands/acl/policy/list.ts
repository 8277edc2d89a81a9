/** trellis acl policy list: every policy (without its rules). */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { show } from '../../../views.js';
import { policyTable } from '../views.js';

export function policyListCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'list',
    describe: 'List the policies',
    builder: (y) =>
      y
        .example('$0 acl policy list', 'Every policy')
        .example('$0 acl policy list --format json', 'As JSON'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.acl.policyList({ signal: env.signal });
      show(env, value, () => policyTable(value));
    }),
  };
}
