/** trellis config list --kind K: the names of a kind's entries. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { show } from '../../views.js';

interface Args {
  kind: string;
}

export function configListCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'list',
    describe: 'List the entries of a kind (names; whole entries with --format json)',
    builder: (y) =>
      y
        .option('kind', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Entry kind',
        })
        .example('$0 config list --kind service-defaults', 'Every service-defaults entry')
        .example('$0 config list --kind service-intentions --format json', 'Entries as JSON'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.configEntries.list(args.kind, { signal: env.signal });
      show(env, value, () => value.map((e) => `${e.Name}\n`).join(''));
    }),
  };
}
