/** trellis members: the nodes the agent's gossip pool sees, with their status. */
import type { CommandModule } from 'yargs';
import { clientFlags } from '../../client-flags.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { membersTable, show } from '../../views.js';

export function membersCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  ctx.commandPaths.add('members');
  return {
    command: 'members',
    describe: 'List the cluster members the agent knows',
    builder: (y) =>
      clientFlags(y, ctx.io)
        .example('$0 members', 'Members with address and status')
        .example('$0 members --format json', 'Members as JSON'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.agent.members();
      show(env, value, () => membersTable(value));
    }),
  };
}
