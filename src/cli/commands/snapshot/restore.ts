/** trellis snapshot restore FILE: replace the whole catalog state with FILE's. */
import type { CommandModule } from 'yargs';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatJson } from '../../output.js';
import { readSnapshotFile } from './file.js';

interface Args {
  file: string;
}

export function snapshotRestoreCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'restore <file>',
    describe:
      'Replace the whole catalog state with the snapshot in FILE (needs a management token)',
    builder: (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file' })
        .example(
          '$0 snapshot restore backup.snap',
          'Restore; prints the index the cluster continues from',
        ),
    handler: action<Args>(ctx, async (env, args) => {
      // A damaged file is refused here, before it is sent.
      const { bytes, decoded } = await readSnapshotFile(env, args.file);
      const index = await env.client.snapshot.restore(bytes, { signal: env.signal });
      env.io.stdout(
        env.format === 'json'
          ? formatJson({ File: args.file, SnapshotIndex: decoded.header.index, Index: index })
          : `Restored snapshot of index ${decoded.header.index} from ${args.file}; the catalog continues at index ${index}\n`,
      );
    }),
  };
}
