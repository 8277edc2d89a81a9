/** trellis acl token: create, list, read and delete ACL tokens. */
import type { CliContext } from '../../../context.js';
import { nestedGroup } from '../nested.js';
import { tokenCreateCommand } from './create.js';
import { tokenDeleteCommand } from './delete.js';
import { tokenListCommand } from './list.js';
import { tokenReadCommand } from './read.js';

export function aclTokenCommand(ctx: CliContext) {
  return nestedGroup(ctx, 'acl', {
    name: 'token',
    describe: 'Create, list, read and delete tokens (and join tokens for new hosts)',
    example: ['$0 acl token create --policy-name web-write', 'Make a token with a policy'],
    verbs: (add) => {
      add(tokenCreateCommand(ctx));
      add(tokenListCommand(ctx));
      add(tokenReadCommand(ctx));
      add(tokenDeleteCommand(ctx));
    },
  });
}
