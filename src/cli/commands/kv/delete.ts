/** trellis kv delete KEY: delete a key, a prefix (--recurse), or a key if unchanged (--cas). */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { formatJson } from '../../output.js';
import { nonNegativeInt } from '../../validate.js';

interface Args {
  key: string;
  recurse?: boolean;
  cas?: number;
}

export function kvDeleteCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'delete <key>',
    describe: 'Delete a key, or every key under a prefix',
    builder: (y) =>
      y
        .positional('key', {
          type: 'string',
          demandOption: true,
          describe: 'Key (prefix with --recurse)',
        })
        .option('recurse', { type: 'boolean', describe: 'Delete every key under KEY as a prefix' })
        .option('cas', { type: 'number', describe: "Delete only if the key's ModifyIndex is this" })
        .conflicts('recurse', 'cas')
        .example('$0 kv delete config/web/port', 'Delete one key')
        .example('$0 kv delete config/web/ --recurse', 'Delete everything under config/web/'),
    handler: action<Args>(ctx, async (env, args) => {
      const cas = nonNegativeInt(args.cas, 'cas');
      const ok = await env.client.kv.delete(args.key, { recurse: args.recurse, cas });
      if (env.format === 'json') env.io.stdout(formatJson({ Key: args.key, Success: ok }));
      if (!ok) {
        env.io.stderr(
          `Error: Did not delete ${args.key}: check-and-set failed, its ModifyIndex is no longer ${cas}\n`,
        );
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') {
        env.io.stdout(
          args.recurse
            ? `Success! Deleted keys with prefix: ${args.key}\n`
            : `Success! Deleted key: ${args.key}\n`,
        );
      }
    }),
  };
}
