/** trellis snapshot inspect FILE: what a snapshot file holds, read locally (no server needed). */
import type { CommandModule } from 'yargs';
import { isSnapshotProblem, summarizeSnapshot } from '../../../api/index.js';
import { badRequest } from '../../../core/index.js';
import { action, type CliContext, type GlobalArgs } from '../../context.js';
import { formatJson } from '../../output.js';
import { readSnapshotFile } from './file.js';

interface Args {
  file: string;
}

export function snapshotInspectCommand(
  ctx: CliContext,
): CommandModule<GlobalArgs, GlobalArgs & Args> {
  return {
    command: 'inspect <file>',
    describe: 'Print the index, size and contents counts of a snapshot file',
    builder: (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'Snapshot file' })
        .example('$0 snapshot inspect backup.snap', 'Index, datacenter, size, counts'),
    handler: action<Args>(ctx, async (env, args) => {
      const { bytes, decoded } = await readSnapshotFile(env, args.file);
      const s = summarizeSnapshot(decoded);
      if (isSnapshotProblem(s)) throw badRequest(`${args.file}: ${s.error}`);
      if (env.format === 'json') {
        env.io.stdout(formatJson({ ...s, fileBytes: bytes.length }));
        return;
      }
      const rows: [string, string | number][] = [
        ['Index', s.index],
        ['Datacenter', s.datacenter],
        ['Size', `${bytes.length} bytes (${s.bytes} uncompressed)`],
        ['Nodes', s.nodes],
        ['Services', s.services],
        ['Checks', s.checks],
        ['KV keys', s.kvKeys],
        ['Sessions', s.sessions],
      ];
      env.io.stdout(rows.map(([k, v]) => `${k.padEnd(11)}${v}\n`).join(''));
    }),
  };
}
