/** trellis snapshot: save the whole catalog state to a file, restore it, inspect a file. */
import type { CliContext } from '../../context.js';
import { groupCommand } from '../group.js';
import { snapshotInspectCommand } from './inspect.js';
import { snapshotRestoreCommand } from './restore.js';
import { snapshotSaveCommand } from './save.js';

export function snapshotCommand(ctx: CliContext) {
  return groupCommand(ctx, {
    name: 'snapshot',
    describe: 'Save, restore and inspect snapshots of the whole catalog state',
    example: ['$0 snapshot save backup.snap', 'Save the catalog state to backup.snap'],
    verbs: (add) => {
      add(snapshotSaveCommand(ctx));
      add(snapshotRestoreCommand(ctx));
      add(snapshotInspectCommand(ctx));
    },
  });
}
