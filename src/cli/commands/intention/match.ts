/** trellis intention match (--source | --destination) NAME: the intentions that apply to NAME. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { UsageError } from '../../exit.js';
import { show } from '../../views.js';
import { intentionLine } from './views.js';

interface Args {
  name: string;
  source?: boolean;
  destination?: boolean;
}

export function intentionMatchCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'match <name>',
    describe: 'List the intentions that apply to a service, in evaluation order',
    builder: (y) =>
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'Service name' })
        .option('source', { type: 'boolean', describe: 'Intentions with NAME as the source' })
        .option('destination', {
          type: 'boolean',
          describe: 'Intentions with NAME as the destination (the default)',
        })
        .example('$0 intention match api', 'What may call api, first match first')
        .example('$0 intention match --source web', 'What applies when web calls out'),
    handler: action<Args>(ctx, async (env, args) => {
      if (args.source && args.destination) {
        throw new UsageError('Give --source or --destination, not both');
      }
      const by = args.source ? 'source' : 'destination';
      const { value } = await env.client.connect.intentionMatch(by, args.name, {
        signal: env.signal,
      });
      const list = value[args.name] ?? [];
      show(env, list, () => list.map((i) => `${intentionLine(i)}\n`).join(''));
    }),
  };
}
