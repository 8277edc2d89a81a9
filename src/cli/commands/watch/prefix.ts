/** trellis watch prefix PREFIX: every key:value under a prefix, reprinted on every change. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { kvLines } from '../../views.js';
import { runWatch } from './loop.js';

interface Args {
  prefix: string;
}

export function watchPrefixCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'prefix <prefix>',
    describe: 'Print every key:value under a prefix, then again on every change',
    builder: (y) =>
      y
        .positional('prefix', { type: 'string', demandOption: true, describe: 'Key prefix' })
        .example('$0 watch prefix config/web/', 'Follow everything under config/web/'),
    handler: action<Args>(ctx, (env, args) =>
      runWatch(
        env,
        async (index, signal) => {
          const res = await env.client.kv.get(args.prefix, { recurse: true, index, signal });
          return { value: res.value ?? [], index: res.index };
        },
        (pairs) => kvLines(pairs, false),
      ),
    ),
  };
}
