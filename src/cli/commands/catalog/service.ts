/** trellis catalog service NAME: the registered instances of one service. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatTable } from '../../output.js';
import { show } from '../../views.js';

interface Args {
  name: string;
  tag?: string | string[];
}

export function catalogServiceCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'service <name>',
    describe: 'List the instances of one service',
    builder: (y) =>
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'Service name' })
        .option('tag', { type: 'string', describe: 'Only instances with this tag (repeatable)' })
        .example('$0 catalog service web', 'Every instance of "web"')
        .example('$0 catalog service web --tag v2', 'Only those tagged "v2"'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.catalog.service(args.name, { tag: args.tag });
      show(env, value, () =>
        formatTable(
          ['Node', 'ServiceID', 'Address', 'Port', 'Tags'],
          value.map((s) => [
            s.Node,
            s.ServiceID,
            s.ServiceAddress || s.Address,
            String(s.ServicePort),
            (s.ServiceTags ?? []).join(','),
          ]),
        ),
      );
    }),
  };
}
