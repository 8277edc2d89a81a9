/** trellis kv put KEY [VALUE|-|@file]: write a value, optionally check-and-set or locking. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { EXIT_FAILURE } from '../../exit.js';
import { readValue } from '../../input.js';
import { formatJson } from '../../output.js';
import { nonNegativeInt } from '../../validate.js';

interface Args {
  key: string;
  value?: string;
  cas?: number;
  flags?: number;
  acquire?: string;
  release?: string;
}

export function kvPutCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'put <key> [value]',
    describe: 'Write a value (from the argument, "@file", or stdin for "-" or none)',
    builder: (y) =>
      y
        .positional('key', { type: 'string', demandOption: true, describe: 'Key' })
        .positional('value', {
          type: 'string',
          describe: 'Value; "-" or none reads stdin, "@path" a file',
        })
        .option('cas', {
          type: 'number',
          describe: "Write only if the key's ModifyIndex is this (0: only if absent)",
        })
        .option('flags', { type: 'number', describe: 'Opaque integer stored with the value' })
        .option('acquire', { type: 'string', describe: "Take the key's lock for this session" })
        .option('release', {
          type: 'string',
          describe: "Release the key's lock held by this session",
        })
        .conflicts('acquire', 'release')
        .example('$0 kv put config/web/port 8080', 'Write a value')
        .example('$0 kv put config/web/tls @cert.pem', "Write a file's contents")
        .example('echo on | $0 kv put flags/beta -', 'Write from stdin')
        .example(
          '$0 kv put config/web/port 8081 --cas 42',
          'Write only if unchanged since index 42',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const cas = nonNegativeInt(args.cas, 'cas');
      const flags = nonNegativeInt(args.flags, 'flags');
      // yargs turns a bare "-" into "", so look at the command line to tell it from ''.
      const fromStdin = args.value === '' && env.argv.includes('-');
      const value = await readValue(fromStdin ? '-' : args.value, env.io, env.deps.readFile);
      const ok = await env.client.kv.put(args.key, value, {
        cas,
        flags,
        acquire: args.acquire,
        release: args.release,
      });
      if (env.format === 'json') env.io.stdout(formatJson({ Key: args.key, Success: ok }));
      if (!ok) {
        env.io.stderr(`Error: ${refusal(args, cas)}\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') env.io.stdout(`${success(args)}\n`);
    }),
  };
}

function success(args: Args): string {
  if (args.acquire) return `Success! Lock acquired on: ${args.key}`;
  if (args.release) return `Success! Lock released on: ${args.key}`;
  return `Success! Data written to: ${args.key}`;
}

/** Why the server answered false: the only conditions a write can fail on. */
function refusal(args: Args, cas: number | undefined): string {
  if (cas !== undefined) {
    const why =
      cas === 0
        ? 'the key already exists (--cas 0 writes only new keys)'
        : `its ModifyIndex is no longer ${cas} (someone else changed it)`;
    return `Did not write to ${args.key}: check-and-set failed, ${why}`;
  }
  if (args.acquire) {
    return `Did not write to ${args.key}: lock not acquired (held by another session, or session ${args.acquire} is invalid)`;
  }
  if (args.release) {
    return `Did not write to ${args.key}: lock not released (session ${args.release} does not hold it)`;
  }
  return `Did not write to ${args.key}: the server refused the write`;
}
