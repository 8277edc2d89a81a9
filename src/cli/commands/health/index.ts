/** trellis health: instances and checks with their status. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { healthChecksCommand } from './checks.js';
import { healthNodeCommand } from './node.js';
import { healthServiceCommand } from './service.js';
import { healthStateCommand } from './state.js';

export function healthCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'health',
    describe: 'Read health: instances by service, checks by service, node or state',
    example: ['$0 health service web --passing', 'Healthy instances of "web"'],
    verbs: (add) => {
      add(healthServiceCommand(ctx));
      add(healthChecksCommand(ctx));
      add(healthNodeCommand(ctx));
      add(healthStateCommand(ctx));
    },
  });
}
