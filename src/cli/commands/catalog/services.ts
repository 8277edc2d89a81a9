/** trellis catalog services: every service name with the union of its tags. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatTable } from '../../output.js';
import { show } from '../../views.js';

export function catalogServicesCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'services',
    describe: 'List the services in the catalog with their tags',
    builder: (y) =>
      y
        .example('$0 catalog services', 'List every service')
        .example('$0 catalog services --format json', 'The same, as JSON'),
    handler: action(ctx, async (env) => {
      const { value } = await env.client.catalog.services();
      show(env, value, () =>
        formatTable(
          ['Service', 'Tags'],
          Object.keys(value)
            .sort()
            .map((name) => [name, (value[name] ?? []).join(',')]),
        ),
      );
    }),
  };
}
