/**
 * trellis config write FILE|-: create or update the config entry a file describes. The file is
 * parsed and validated here (src/config's parseConfigEntryFile), so mistakes are shown as
 * file:line:column before anything is sent.
 */
import type { CommandModule } from 'yargs';
import { parseConfigEntryFile } from '../../../config/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatProblem } from '../../definitions.js';
import { EXIT_FAILURE, EXIT_USAGE } from '../../exit.js';
import { formatJson } from '../../output.js';
import { nonNegativeInt } from '../../validate.js';
import { casRefusal } from './messages.js';
import { readSource } from './source.js';

interface Args {
  file: string;
  cas?: number;
}

export function configWriteCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'write <file>',
    describe: 'Create or update a config entry from an HCL or JSON file ("-" for stdin)',
    builder: (y) =>
      y
        .positional('file', {
          type: 'string',
          demandOption: true,
          describe: 'Config entry file (.hcl or .json), or "-" for stdin',
        })
        .option('cas', {
          type: 'number',
          describe: "Write only if the entry's ModifyIndex is this (0: only if it is new)",
        })
        .example('$0 config write web-defaults.hcl', 'Write the entry in web-defaults.hcl')
        .example('cat web-defaults.json | $0 config write -', 'From stdin')
        .example('$0 config write web-defaults.hcl --cas 42', 'Only if unchanged since index 42'),
    handler: action<Args>(ctx, async (env, args) => {
      const cas = nonNegativeInt(args.cas, 'cas');
      const src = await readSource(args.file, env);
      const parsed = parseConfigEntryFile(src.text, src.name);
      if (!parsed.entry || parsed.errors.length > 0) {
        for (const d of parsed.errors) env.io.stderr(`${formatProblem(d)}\n`);
        env.io.stderr(
          `Error: Config entry not written: ${parsed.errors.length} problem(s) in ${src.name}\n`,
        );
        return EXIT_USAGE;
      }
      const { Kind, Name } = parsed.entry;
      const ok = await env.client.configEntries.set(parsed.entry, { cas, signal: env.signal });
      if (env.format === 'json') env.io.stdout(formatJson({ Kind, Name, Success: ok }));
      if (!ok) {
        env.io.stderr(`Error: Config entry not updated: ${Kind}/${Name}${casRefusal(cas)}\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') env.io.stdout(`Config entry written: ${Kind}/${Name}\n`);
    }),
  };
}
