/** trellis health checks NAME: every check of every instance of a service. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { checksTable, show } from '../../views.js';

interface Args {
  name: string;
}

export function healthChecksCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'checks <name>',
    describe: 'List the checks of a service',
    builder: (y) =>
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'Service name' })
        .example('$0 health checks web', 'Checks of every "web" instance'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.health.checks(args.name);
      show(env, value, () => checksTable(value));
    }),
  };
}
