/**
 * trellis intention create SRC DST (--allow | --deny | --file FILE): one intention, L4 or with
 * L7 permissions from a file. An existing one is replaced only with --replace.
 */
import type { CommandModule } from 'yargs';
import type { IntentionUpsert } from '../../../api/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatProblem } from '../../definitions.js';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from '../../exit.js';
import { formatJson } from '../../output.js';
import { readSource } from '../config/source.js';
import { parseIntentionFile } from './file.js';
import { actionText, intentionLine, pairName } from './views.js';

interface Args {
  source: string;
  destination: string;
  allow?: boolean;
  deny?: boolean;
  file?: string;
  description?: string;
  replace?: boolean;
}

export function intentionCreateCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'create <source> <destination>',
    describe: 'Create an intention: allow or deny, or L7 permissions from a file',
    builder: (y) =>
      y
        .positional('source', {
          type: 'string',
          demandOption: true,
          describe: 'Source service name, or * for any',
        })
        .positional('destination', {
          type: 'string',
          demandOption: true,
          describe: 'Destination service name, or * for any',
        })
        .option('allow', { type: 'boolean', describe: 'Allow connections from source' })
        .option('deny', { type: 'boolean', describe: 'Deny connections from source' })
        .option('file', {
          type: 'string',
          requiresArg: true,
          describe: 'HCL or JSON file with Permissions (L7 rules) and Description; "-" for stdin',
        })
        .option('description', { type: 'string', requiresArg: true, describe: 'Free text' })
        .option('replace', { type: 'boolean', describe: 'Replace an existing intention' })
        .example('$0 intention create web api --allow', 'Let web connect to api')
        .example('$0 intention create "*" db --deny', 'Deny every service access to db')
        .example('$0 intention create web api --file api-rules.hcl', 'HTTP rules from a file')
        .example('$0 intention create web api --deny --replace', 'Change an existing one')
        .epilogue(
          [
            'A permissions file (HCL or JSON):',
            '  Description = "web may read the API"',
            '  Permissions = [',
            '    { Action = "allow", HTTP { PathPrefix = "/api", Methods = ["GET"] } },',
            '    { Action = "deny", HTTP { PathPrefix = "/" } },',
            '  ]',
          ].join('\n'),
        ),
    handler: action<Args>(ctx, async (env, args) => {
      const given = (['allow', 'deny', 'file'] as const).filter((k) => args[k] !== undefined);
      if (given.length === 0) throw new UsageError('Give one of --allow, --deny or --file');
      if (given.length > 1) {
        throw new UsageError(
          `Give only one of --allow, --deny or --file (got --${given.join(', --')})`,
        );
      }
      if (args.allow === false || args.deny === false) {
        throw new UsageError('Give one of --allow, --deny or --file');
      }
      let body: IntentionUpsert;
      if (args.file !== undefined) {
        const src = await readSource(args.file, env);
        const parsed = parseIntentionFile(src.text, src.name);
        if (parsed.errors.length > 0) {
          for (const d of parsed.errors) env.io.stderr(`${formatProblem(d)}\n`);
          env.io.stderr(
            `Error: Intention ${pairName(args.source, args.destination)} not written: ${parsed.errors.length} problem(s) in ${src.name}\n`,
          );
          return EXIT_USAGE;
        }
        body = parsed.body;
      } else {
        body = { Action: args.allow ? 'allow' : 'deny' };
      }
      body = { SourceType: 'consul', ...body };
      if (args.description !== undefined) body.Description = args.description;

      const name = pairName(args.source, args.destination);
      const { value: existing } = await env.client.connect.intentionGetExact(
        args.source,
        args.destination,
        { signal: env.signal },
      );
      if (existing && !args.replace) {
        env.io.stderr(
          `Error: An intention ${intentionLine(existing)} already exists; use --replace to replace it\n`,
        );
        return EXIT_FAILURE;
      }
      const ok = await env.client.connect.intentionUpsert(args.source, args.destination, body, {
        signal: env.signal,
      });
      if (env.format === 'json') {
        env.io.stdout(
          formatJson({
            SourceName: args.source,
            DestinationName: args.destination,
            ...body,
            Replaced: existing !== null,
            Success: ok,
          }),
        );
      }
      if (!ok) {
        env.io.stderr(`Error: The server did not write intention ${name}\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') {
        env.io.stdout(`${existing ? 'Replaced' : 'Created'}: ${name} (${actionText(body)})\n`);
      }
    }),
  };
}
