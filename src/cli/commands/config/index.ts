/** trellis config: centralized config entries (service-defaults, proxy-defaults, ...). */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { configDeleteCommand } from './delete.js';
import { configListCommand } from './list.js';
import { configReadCommand } from './read.js';
import { configWriteCommand } from './write.js';

export function configCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'config',
    describe: 'Write, read, list and delete config entries',
    example: ['$0 config write web-defaults.hcl', 'Create or update a config entry'],
    verbs: (add) => {
      add(configWriteCommand(ctx));
      add(configReadCommand(ctx));
      add(configListCommand(ctx));
      add(configDeleteCommand(ctx));
    },
  });
}
