/**
 * trellis acl policy create --name N (--rules TEXT | --rules-file FILE): the rules are parsed
 * here first, so a mistake is shown with its position and nothing is sent.
 */
import type { CommandModule } from 'yargs';
import { parseAclRules } from '../../../../config/index.js';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { formatProblem } from '../../../definitions.js';
import { EXIT_USAGE, UsageError } from '../../../exit.js';
import { show } from '../../../views.js';
import { readSource } from '../../config/source.js';
import { policyText } from '../views.js';

interface Args {
  name: string;
  description?: string;
  rules?: string;
  rulesFile?: string;
  datacenter?: string | string[];
}

export function policyCreateCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'create',
    describe: 'Create a policy from ACL rules (HCL or JSON), checked before it is sent',
    builder: (y) =>
      y
        .option('name', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'Policy name',
        })
        .option('description', { type: 'string', requiresArg: true, describe: 'What it grants' })
        .option('rules', {
          type: 'string',
          requiresArg: true,
          describe: 'The rules text, or @FILE',
        })
        .option('rules-file', {
          type: 'string',
          requiresArg: true,
          describe: 'Read the rules from this file ("-" for stdin)',
        })
        .option('datacenter', {
          type: 'string',
          requiresArg: true,
          describe: 'Valid only in this datacenter (repeatable); all when absent',
        })
        .conflicts('rules', 'rules-file')
        .example(
          `$0 acl policy create --name web-write --rules 'service "web" { policy = "write" }'`,
          'Rules on the command line',
        )
        .example(
          '$0 acl policy create --name ops-read --description "Read everything" --rules-file ops.hcl',
          'Rules from a file',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      if (args.rules === undefined && args.rulesFile === undefined) {
        throw new UsageError('Give the rules with --rules TEXT or --rules-file FILE');
      }
      // "--rules @file" reads a file, as Consul's -rules=@file does.
      const file =
        args.rulesFile ?? (args.rules!.startsWith('@') ? args.rules!.slice(1) : undefined);
      const { text: rules, name } =
        file !== undefined ? await readSource(file, env) : { text: args.rules!, name: '<rules>' };
      const parsed = parseAclRules(rules, name);
      if (parsed.errors.length > 0) {
        for (const d of parsed.errors) env.io.stderr(`${formatProblem(d)}\n`);
        env.io.stderr(
          `Error: Policy "${args.name}" not created: ${parsed.errors.length} problem(s) in the rules\n`,
        );
        return EXIT_USAGE;
      }
      const datacenters = typeof args.datacenter === 'string' ? [args.datacenter] : args.datacenter;
      const policy = await env.client.acl.policyCreate(
        { Name: args.name, Description: args.description, Rules: rules, Datacenters: datacenters },
        { signal: env.signal },
      );
      show(env, policy, () => policyText(policy));
    }),
  };
}
