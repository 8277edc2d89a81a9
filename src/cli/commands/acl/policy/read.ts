/** trellis acl policy read (ID | --name N): a policy and its rules. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { EXIT_FAILURE } from '../../../exit.js';
import { show } from '../../../views.js';
import { policyText } from '../views.js';
import { describeRef, findPolicy, policyRef } from './lookup.js';

interface Args {
  id?: string;
  name?: string;
}

export function policyReadCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'read [id]',
    describe: 'Print a policy and its rules, by ID or --name',
    builder: (y) =>
      y
        .positional('id', { type: 'string', describe: 'Policy ID' })
        .option('name', { type: 'string', requiresArg: true, describe: 'Policy name' })
        .example('$0 acl policy read --name web-write', 'By name')
        .example('$0 acl policy read 35b8ecb0-707c-ee18-2002-81b238b54b38', 'By ID'),
    handler: action<Args>(ctx, async (env, args) => {
      const ref = policyRef(args);
      const policy = await findPolicy(env, ref);
      if (policy === null) {
        env.io.stderr(`Error: No policy exists ${describeRef(ref)}\n`);
        return EXIT_FAILURE;
      }
      show(env, policy, () => policyText(policy));
    }),
  };
}
