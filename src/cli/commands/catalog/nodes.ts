/** trellis catalog nodes: every node with its address and datacenter. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatTable } from '../../output.js';
import { show } from '../../views.js';

export function catalogNodesCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'nodes',
    describe: 'List the nodes in the catalog',
    builder: (y) =>
      y
        .example('$0 catalog nodes', 'List every node')
        .example('$0 catalog nodes --http-addr 10.0.0.5:8500', 'Ask another server'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.catalog.nodes();
      show(env, value, () =>
        formatTable(
          ['Node', 'ID', 'Address', 'DC'],
          value.map((n) => [n.Node, n.ID, n.Address, n.Datacenter]),
        ),
      );
    }),
  };
}
