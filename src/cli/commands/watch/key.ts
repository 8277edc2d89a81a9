/** trellis watch key KEY: a value, reprinted on every change. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { kvValueText } from '../../views.js';
import { runWatch } from './loop.js';

interface Args {
  key: string;
}

export function watchKeyCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'key <key>',
    describe: 'Print the value of a key, then again on every change',
    builder: (y) =>
      y
        .positional('key', { type: 'string', demandOption: true, describe: 'Key' })
        .example('$0 watch key config/web/port', 'Follow one value')
        .example('$0 watch key config/web/port --format json', 'One KV pair (or null) per change'),
    handler: action<Args>(ctx, (env, args) =>
      runWatch(
        env,
        (index, signal) => env.client.kv.get(args.key, { index, signal }),
        (pair) =>
          pair === null ? `No key exists at: ${args.key}\n` : `${kvValueText(pair, false)}\n`,
      ),
    ),
  };
}
