/** trellis kv get KEY: a value as raw text, or every pair under a prefix. */
import type { CommandModule } from 'yargs';
import type { KVPair } from '../../../api/index.js';
import { action, type CliContext, type CommandEnv, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { formatJson } from '../../output.js';
import { kvLines, kvValueText } from '../../views.js';

interface Args {
  key: string;
  recurse?: boolean;
  base64?: boolean;
}

export function kvGetCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'get <key>',
    describe: 'Print the value of a key, or every key:value under a prefix',
    builder: (y) =>
      y
        .positional('key', {
          type: 'string',
          demandOption: true,
          describe: 'Key (prefix with --recurse)',
        })
        .option('recurse', { type: 'boolean', describe: 'Every pair under KEY as a prefix' })
        .option('base64', { type: 'boolean', describe: 'Print values base64-encoded' })
        .example('$0 kv get config/web/port', 'Print one value')
        .example('$0 kv get config/ --recurse', 'Print key:value lines under config/'),
    handler: action<Args>(ctx, async (env, args) => {
      const base64 = args.base64 ?? false;
      if (args.recurse) {
        const { value } = await env.client.kv.get(args.key, { recurse: true });
        env.io.stdout(
          env.format === 'json' ? formatJson(value ?? []) : kvLines(value ?? [], base64),
        );
        return;
      }
      const { value } = await env.client.kv.get(args.key);
      if (value === null) {
        env.io.stderr(`Error: No key exists at: ${args.key}\n`);
        return EXIT_FAILURE;
      }
      printPair(env, value, base64);
    }),
  };
}

function printPair(env: CommandEnv, pair: KVPair, base64: boolean): void {
  env.io.stdout(env.format === 'json' ? formatJson(pair) : `${kvValueText(pair, base64)}\n`);
}
