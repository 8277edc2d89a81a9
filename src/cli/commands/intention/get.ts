/** trellis intention get SRC DST: the intention for exactly this pair. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { show } from '../../views.js';
import { intentionText, pairName } from './views.js';

interface Args {
  source: string;
  destination: string;
}

export function intentionGetCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'get <source> <destination>',
    describe: 'Print the intention from source to destination',
    builder: (y) =>
      y
        .positional('source', { type: 'string', demandOption: true, describe: 'Source service' })
        .positional('destination', {
          type: 'string',
          demandOption: true,
          describe: 'Destination service',
        })
        .example('$0 intention get web api', 'The web => api intention')
        .example('$0 intention get "*" db --format json', 'The * => db intention as JSON'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.connect.intentionGetExact(args.source, args.destination, {
        signal: env.signal,
      });
      if (value === null) {
        env.io.stderr(
          `Error: No intention exists for ${pairName(args.source, args.destination)}\n`,
        );
        return EXIT_FAILURE;
      }
      show(env, value, () => intentionText(value));
    }),
  };
}
