/** trellis config delete --kind K --name N [--cas N]: remove a config entry. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { formatJson } from '../../output.js';
import { nonNegativeInt } from '../../validate.js';
import { casRefusal } from './messages.js';

interface Args {
  kind: string;
  name: string;
  cas?: number;
}

export function configDeleteCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'delete',
    describe: 'Delete a config entry',
    builder: (y) =>
      y
        .option('kind', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Entry kind',
        })
        .option('name', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Entry name',
        })
        .option('cas', {
          type: 'number',
          describe: "Delete only if the entry's ModifyIndex is this",
        })
        .example('$0 config delete --kind service-defaults --name web', "Delete web's defaults")
        .example(
          '$0 config delete --kind service-defaults --name web --cas 42',
          'Only if unchanged since index 42',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const cas = nonNegativeInt(args.cas, 'cas');
      const ok = await env.client.configEntries.delete(args.kind, args.name, {
        cas,
        signal: env.signal,
      });
      const what = `${args.kind}/${args.name}`;
      if (env.format === 'json') {
        env.io.stdout(formatJson({ Kind: args.kind, Name: args.name, Success: ok }));
      }
      if (!ok) {
        env.io.stderr(`Error: Config entry not deleted: ${what}${casRefusal(cas)}\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') env.io.stdout(`Config entry deleted: ${what}\n`);
    }),
  };
}
