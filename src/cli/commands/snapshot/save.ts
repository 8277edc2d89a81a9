/** trellis snapshot save FILE: the catalog state at one index, written atomically (mode 0600). */
import type { CommandModule } from 'yargs';
import { decodeSnapshotFile, isSnapshotProblem } from '../../../api/index.js';
import { MeshError } from '../../../core/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatJson } from '../../output.js';
import { writeFileAtomically } from './file.js';

interface Args {
  file: string;
}

export function snapshotSaveCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'save <file>',
    describe: 'Save the whole catalog state to FILE (needs a management token)',
    builder: (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'File to write' })
        .example('$0 snapshot save backup.snap', 'Save the state; prints its index'),
    handler: action<Args>(ctx, async (env, args) => {
      const saved = await env.client.snapshot.save({ signal: env.signal });
      // Check what arrived before it replaces an older file of the same name.
      const decoded = decodeSnapshotFile(saved.file);
      if (isSnapshotProblem(decoded))
        throw new MeshError(
          'MESH_ERR_SERVER',
          'peer',
          `the server sent an unusable snapshot (${decoded.error}); ${args.file} was not written`,
        );
      await writeFileAtomically(args.file, saved.file);
      const index = decoded.header.index;
      env.io.stdout(
        env.format === 'json'
          ? formatJson({ File: args.file, Index: index, Bytes: saved.file.length })
          : `Saved snapshot at index ${index} to ${args.file}\n`,
      );
    }),
  };
}
