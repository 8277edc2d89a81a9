/** trellis acl bootstrap: make the first management token (once per cluster). */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { show } from '../../views.js';
import { tokenText } from './views.js';

export function aclBootstrapCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'bootstrap',
    describe: 'Create the initial management token; works once, then the server refuses (403)',
    builder: (y) =>
      y
        .example('$0 acl bootstrap', 'Print the new management token')
        .example(
          'export TRELLIS_HTTP_TOKEN=$($0 acl bootstrap --format json | jq -r .SecretID)',
          'Keep its secret for the next commands',
        ),
    handler: action(ctx, async (env) => {
      const token = await env.client.acl.bootstrap({ signal: env.signal });
      show(env, token, () => tokenText(token));
    }),
  };
}
