/** Sends a command through the writer and turns a rejected command into its HTTP error. */
import { MeshError } from '../../core/index.js';
import type { Command } from '../state/commands.js';
import type { CatalogContext } from './context.js';

export async function propose(ctx: CatalogContext, cmd: Command): Promise<unknown> {
  const r = ctx.state.validate(cmd) ?? (await ctx.writer.propose(cmd));
  if (!r.ok) {
    throw new MeshError(
      r.status >= 500 ? 'MESH_ERR_WRITE_REJECTED' : 'MESH_ERR_BAD_REQUEST',
      r.status >= 500 ? 'system' : 'user',
      r.error,
      { status: r.status },
    );
  }
  return r.value;
}
