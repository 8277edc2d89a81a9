/** trellis acl: bootstrap the ACL system, manage tokens and policies. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { aclBootstrapCommand } from './bootstrap.js';
import { aclPolicyCommand } from './policy/index.js';
import { aclTokenCommand } from './token/index.js';

export function aclCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'acl',
    describe: 'Bootstrap ACLs and manage tokens and policies',
    example: ['$0 acl token create --description web --service-identity web', 'Make a token'],
    verbs: (add) => {
      add(aclBootstrapCommand(ctx));
      add(aclTokenCommand(ctx));
      add(aclPolicyCommand(ctx));
    },
  });
}
