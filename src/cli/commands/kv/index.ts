/** trellis kv: the key/value store. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { kvDeleteCommand } from './delete.js';
import { kvGetCommand } from './get.js';
import { kvListCommand } from './list.js';
import { kvPutCommand } from './put.js';

export function kvCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'kv',
    describe: 'Read and write the key/value store',
    example: ['$0 kv put config/web/port 8080', 'Write a value'],
    verbs: (add) => {
      add(kvGetCommand(ctx));
      add(kvPutCommand(ctx));
      add(kvDeleteCommand(ctx));
      add(kvListCommand(ctx));
    },
  });
}
