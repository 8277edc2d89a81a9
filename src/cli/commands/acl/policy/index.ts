/** trellis acl policy: create, list, read and delete ACL policies. */
import type { CliContext } from '../../../context.js';
import { nestedGroup } from '../nested.js';
import { policyCreateCommand } from './create.js';
import { policyDeleteCommand } from './delete.js';
import { policyListCommand } from './list.js';
import { policyReadCommand } from './read.js';

export function aclPolicyCommand(ctx: CliContext) {
  return nestedGroup(ctx, 'acl', {
    name: 'policy',
    describe: 'Create, list, read and delete policies',
    example: ['$0 acl policy create --name web-write --rules-file web.hcl', 'Make a policy'],
    verbs: (add) => {
      add(policyCreateCommand(ctx));
      add(policyListCommand(ctx));
      add(policyReadCommand(ctx));
      add(policyDeleteCommand(ctx));
    },
  });
}
