/** trellis intention delete SRC DST: remove the intention for exactly this pair. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { formatJson } from '../../output.js';
import { pairName } from './views.js';

interface Args {
  source: string;
  destination: string;
}

export function intentionDeleteCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'delete <source> <destination>',
    describe: 'Delete the intention from source to destination',
    builder: (y) =>
      y
        .positional('source', { type: 'string', demandOption: true, describe: 'Source service' })
        .positional('destination', {
          type: 'string',
          demandOption: true,
          describe: 'Destination service',
        })
        .example('$0 intention delete web api', 'Delete web => api'),
    handler: action<Args>(ctx, async (env, args) => {
      const name = pairName(args.source, args.destination);
      const opts = { signal: env.signal };
      const { value } = await env.client.connect.intentionGetExact(
        args.source,
        args.destination,
        opts,
      );
      if (value === null) {
        env.io.stderr(`Error: No intention exists for ${name}\n`);
        return EXIT_FAILURE;
      }
      await env.client.connect.intentionDeleteExact(args.source, args.destination, opts);
      if (env.format === 'json') {
        env.io.stdout(
          formatJson({ SourceName: args.source, DestinationName: args.destination, Success: true }),
        );
      } else {
        env.io.stdout(`Intention deleted: ${name}\n`);
      }
    }),
  };
}
