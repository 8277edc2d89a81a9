/** trellis acl token delete ACCESSOR: delete a token; its secret stops working at once. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { EXIT_FAILURE } from '../../../exit.js';
import { formatJson } from '../../../output.js';

interface Args {
  accessor: string;
}

export function tokenDeleteCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'delete <accessor>',
    describe: 'Delete a token by accessor ID',
    builder: (y) =>
      y
        .positional('accessor', {
          type: 'string',
          demandOption: true,
          describe: 'Accessor ID of the token',
        })
        .example('$0 acl token delete 6a1253d2-1785-24fd-91c2-f8e78c745511', 'Delete a token'),
    handler: action<Args>(ctx, async (env, args) => {
      const ok = await env.client.acl.tokenDelete(args.accessor, { signal: env.signal });
      if (env.format === 'json')
        env.io.stdout(formatJson({ AccessorID: args.accessor, Success: ok }));
      if (!ok) {
        env.io.stderr(`Error: The server did not delete token "${args.accessor}"\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') env.io.stdout(`Token "${args.accessor}" deleted successfully\n`);
    }),
  };
}
