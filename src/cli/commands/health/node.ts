/** trellis health node NODE: a node's own checks and those of its services. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { checksTable, show } from '../../views.js';

interface Args {
  node: string;
}

export function healthNodeCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'node <node>',
    describe: 'List the checks on a node',
    builder: (y) =>
      y
        .positional('node', { type: 'string', demandOption: true, describe: 'Node name' })
        .example('$0 health node web-1', 'Checks on node "web-1"'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.health.node(args.node);
      show(env, value, () => checksTable(value));
    }),
  };
}
