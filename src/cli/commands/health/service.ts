/** trellis health service NAME: instances of a service with their aggregated health. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { serviceEntriesTable, show } from '../../views.js';

interface Args {
  name: string;
  passing?: boolean;
  tag?: string | string[];
}

export function healthServiceCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'service <name>',
    describe: 'List the instances of a service with their health',
    builder: (y) =>
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'Service name' })
        .option('passing', { type: 'boolean', describe: 'Only instances whose checks all pass' })
        .option('tag', { type: 'string', describe: 'Only instances with this tag (repeatable)' })
        .example('$0 health service web --passing', 'Healthy instances of "web"')
        .example('$0 health service web --format json', 'Instances with node and checks, as JSON'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.health.service(args.name, {
        passing: args.passing,
        tag: args.tag,
      });
      show(env, value, () => serviceEntriesTable(value));
    }),
  };
}
