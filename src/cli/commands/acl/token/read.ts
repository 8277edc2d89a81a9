/** trellis acl token read ACCESSOR | --self: one token's details. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { EXIT_FAILURE, UsageError } from '../../../exit.js';
import { show } from '../../../views.js';
import { tokenText } from '../views.js';

interface Args {
  accessor?: string;
  self?: boolean;
}

export function tokenReadCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'read [accessor]',
    describe: "Print a token's details, by accessor ID or the one in use (--self)",
    builder: (y) =>
      y
        .positional('accessor', { type: 'string', describe: 'Accessor ID of the token' })
        .option('self', { type: 'boolean', describe: 'Read the token this command runs with' })
        .example('$0 acl token read 6a1253d2-1785-24fd-91c2-f8e78c745511', 'One token')
        .example('$0 acl token read --self --token "$SECRET"', 'Which token is this secret?'),
    handler: action<Args>(ctx, async (env, args) => {
      if (args.self && args.accessor) {
        throw new UsageError('Give an accessor ID or --self, not both');
      }
      if (!args.self && !args.accessor) throw new UsageError('Give an accessor ID, or --self');
      const token = args.self
        ? (await env.client.acl.tokenSelf({ signal: env.signal })).value
        : (await env.client.acl.tokenRead(args.accessor!, { signal: env.signal })).value;
      if (token === null) {
        env.io.stderr(`Error: No token exists with accessor ID ${args.accessor}\n`);
        return EXIT_FAILURE;
      }
      show(env, token, () => tokenText(token));
    }),
  };
}
