/** trellis acl policy delete (ID | --name N): delete a policy; tokens lose what it granted. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../../context.js';
import { EXIT_FAILURE } from '../../../exit.js';
import { formatJson } from '../../../output.js';
import { describeRef, findPolicy, policyRef } from './lookup.js';

interface Args {
  id?: string;
  name?: string;
}

export function policyDeleteCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'delete [id]',
    describe: 'Delete a policy, by ID or --name',
    builder: (y) =>
      y
        .positional('id', { type: 'string', describe: 'Policy ID' })
        .option('name', { type: 'string', requiresArg: true, describe: 'Policy name' })
        .example('$0 acl policy delete --name web-write', 'By name')
        .example('$0 acl policy delete 35b8ecb0-707c-ee18-2002-81b238b54b38', 'By ID'),
    handler: action<Args>(ctx, async (env, args) => {
      const ref = policyRef(args);
      let id = ref.id;
      if (id === undefined) {
        const policy = await findPolicy(env, ref);
        if (policy === null) {
          env.io.stderr(`Error: No policy exists ${describeRef(ref)}\n`);
          return EXIT_FAILURE;
        }
        id = policy.ID;
      }
      const ok = await env.client.acl.policyDelete(id, { signal: env.signal });
      if (env.format === 'json') env.io.stdout(formatJson({ ID: id, Success: ok }));
      if (!ok) {
        env.io.stderr(`Error: The server did not delete policy "${id}"\n`);
        return EXIT_FAILURE;
      }
      if (env.format !== 'json') env.io.stdout(`Policy "${id}" deleted successfully\n`);
    }),
  };
}
