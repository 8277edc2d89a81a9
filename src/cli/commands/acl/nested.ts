/**
 * A group inside a group ("trellis acl token create"): groupCommand records command paths
 * under its own name, so the nested group gets a view that files them under the parent's.
 */
import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../../context.js';
import { groupCommand, type GroupSpec } from '../group.js';

export function nestedGroup(
  ctx: CliContext,
  parent: string,
  spec: GroupSpec,
): CommandModule<GlobalArgs, GlobalArgs> {
  const paths = new Set<string>();
  paths.add = (path: string) => {
    ctx.commandPaths.add(`${parent} ${path}`);
    return paths;
  };
  // The parent group already gave its verbs the client flags.
  return groupCommand({ ...ctx, commandPaths: paths }, { clientFlags: 'none', ...spec });
}
