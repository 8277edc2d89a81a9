/** trellis config read --kind K --name N: one config entry, as JSON. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { formatJson } from '../../output.js';

interface Args {
  kind: string;
  name: string;
}

export function configReadCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'read',
    describe: 'Print a config entry (JSON, in either format, as Consul does)',
    builder: (y) =>
      y
        .option('kind', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Entry kind (service-defaults, proxy-defaults, service-intentions, ...)',
        })
        .option('name', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Entry name',
        })
        .example('$0 config read --kind service-defaults --name web', "web's defaults")
        .example('$0 config read --kind proxy-defaults --name global', 'The global proxy defaults'),
    handler: action<Args>(ctx, async (env, args) => {
      const { value } = await env.client.configEntries.get(args.kind, args.name, {
        signal: env.signal,
      });
      if (value === null) {
        env.io.stderr(`Error: Config entry not found for "${args.kind}" / "${args.name}"\n`);
        return EXIT_FAILURE;
      }
      env.io.stdout(formatJson(value));
    }),
  };
}
