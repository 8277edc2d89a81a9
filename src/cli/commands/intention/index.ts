/** trellis intention: which services may call which, at L4 and for HTTP requests (L7). */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { intentionCheckCommand } from './check.js';
import { intentionCreateCommand } from './create.js';
import { intentionDeleteCommand } from './delete.js';
import { intentionGetCommand } from './get.js';
import { intentionListCommand } from './list.js';
import { intentionMatchCommand } from './match.js';

export function intentionCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'intention',
    describe: 'Allow or deny service-to-service traffic, and check what a request would get',
    example: ['$0 intention create web api --allow', 'Let web call api'],
    verbs: (add) => {
      add(intentionCreateCommand(ctx));
      add(intentionGetCommand(ctx));
      add(intentionListCommand(ctx));
      add(intentionDeleteCommand(ctx));
      add(intentionMatchCommand(ctx));
      add(intentionCheckCommand(ctx));
    },
  });
}
